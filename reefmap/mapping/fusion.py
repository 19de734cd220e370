"""Fusing one labelled depth map after another into the streaming map: depth into the surface volume (the map's
geometry), back-projected pixels' class votes and colours into the voxel map (the map's labels)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reefmap.errors import OutputError
from reefmap.geometry.backproject import backproject
from reefmap.geometry.transforms import transform_points
from reefmap.io.video import Frame
from reefmap.mapping.spill import FinishedPoints
from reefmap.mapping.streaming import StreamingMap, camera_reach
from reefmap.mapping.voxels import LabelledCloud

DEPTH_MAP_SCALE = 0.001  # map units per step of the 16-bit depth PNGs written by --save-depth


def fusion_size(image_size: tuple[int, int], stride: int) -> tuple[int, int]:
    """The (w, h) at which frames are fused: the processing size divided by the fusion stride."""
    return max(1, image_size[0] // stride), max(1, image_size[1] // stride)


class FrameFuser:
    """Fuses each labelled depth map with its camera pose into the streaming map.

    `K` is the camera at the fusion `size`; `dropped` (C,) marks the class channels kept out of the cloud (water,
    ignored classes); `class_ids` (C,) the taxonomy id of each channel. With `depth_folder` set, each frame's depth
    at the fusion size is also kept as a 16-bit PNG; with `finished_folder`, the finalised part of the map waits
    there for the end of the run instead of in memory.
    """

    def __init__(self, size: tuple[int, int], K: np.ndarray, class_ids: np.ndarray, dropped: np.ndarray,
                 voxel_size: float, max_depth: float, depth_folder: Path | None = None,
                 finished_folder: Path | None = None):
        self.size, self.K, self.max_depth, self.dropped = size, K, max_depth, dropped
        reach = camera_reach(K, size, max_depth, voxel_size)
        self.map = StreamingMap(voxel_size, len(class_ids), class_ids, max_depth, reach, FinishedPoints(finished_folder))
        self.poses: list[np.ndarray] = []
        self.times: list[float] = []
        self.depth_folder = depth_folder
        self.skipped: list[int] = []

    def state(self) -> dict[str, np.ndarray]:
        """The map and the frames fused so far, as arrays (see `restore`)."""
        return {**{f"map_{k}": v for k, v in self.map.state().items()},
                "poses": np.array(self.poses).reshape(-1, 4, 4), "times": np.array(self.times, np.float64),
                "skipped": np.array(self.skipped, np.int64)}

    def rescale(self, factor: float) -> None:
        """Multiply the camera positions by `factor` (the map was given a metric scale after fusion)."""
        self.poses = [np.vstack([np.hstack([p[:3, :3], p[:3, 3:] * factor]), p[3:]]) for p in self.poses]

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.map.restore({k[4:]: v for k, v in state.items() if k.startswith("map_")})
        self.poses, self.times = list(state["poses"]), [float(t) for t in state["times"]]
        self.skipped = [int(k) for k in state["skipped"]]

    def add(self, frame: Frame, channel: np.ndarray, confidence: np.ndarray, depth: np.ndarray, pose: np.ndarray,
            featureless: bool = False) -> None:
        """`channel` (h, w) class channels, `confidence` (h, w) vote weights, `depth` (h', w'), camera-to-world `pose`.

        Featureless frames keep their place in the trajectory but add nothing to the map (counted in `skipped`).
        """
        self.poses.append(pose)
        self.times.append(frame.time_s)
        if featureless:
            self.skipped.append(len(self.poses) - 1)
            return
        channel = cv2.resize(channel, self.size, interpolation=cv2.INTER_NEAREST)
        confidence = cv2.resize(confidence, self.size, interpolation=cv2.INTER_NEAREST)
        depth = cv2.resize(depth, self.size, interpolation=cv2.INTER_NEAREST)
        if self.depth_folder is not None:
            steps = np.clip(np.rint(np.nan_to_num(depth) / DEPTH_MAP_SCALE), 0, 65535).astype(np.uint16)
            target = self.depth_folder / f"{len(self.poses) - 1:06d}.png"
            if not cv2.imwrite(str(target), steps):
                raise OutputError(f"cannot write the depth image {target}; check the output folder's free space and "
                                  "permissions, or run without --save-depth")
        colours = cv2.resize(frame.image, self.size, interpolation=cv2.INTER_AREA)
        keep = (depth > 0) & (depth < self.max_depth) & ~self.dropped[channel]
        points = transform_points(pose, backproject(depth, self.K)[keep])
        self.map.add(points, channel[keep], confidence[keep], colours[keep], np.where(keep, depth, 0.0), self.K, pose)

    @property
    def centres(self) -> np.ndarray:
        """(N, 3) camera positions of the frames fused so far."""
        return np.array([p[:3, 3] for p in self.poses]).reshape(-1, 3)

    def cloud(self) -> LabelledCloud:
        """The fused surface labelled by the votes; frees the map's stores, so it can be taken once."""
        return self.map.cloud()
