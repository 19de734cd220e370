"""Streams of labelled frames (image, class channel, confidence, depth, camera pose) for the fusion, from the
networks or from synthetic truth. A stream can hand over its state between batches and continue from it later,
giving exactly the frames an uninterrupted stream gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
import torch

from reefmap.geometry.backproject import reproject_depth, scale_intrinsics
from reefmap.geometry.camera_path import depth_scale, fit_depth_scale
from reefmap.geometry.transforms import TrajectoryBuilder, invert_pose
from reefmap.io.video import Frame, FrameSource, prefetch
from reefmap.perception.networks import (
    DepthPoseEstimator, Perception, Segmenter, TemporalSmoother, is_featureless, perceive,
)
from reefmap.perception.oracle import TruthReader
from reefmap.runtime.timing import StageTimer
from reefmap.taxonomy import Taxonomy


@dataclass(frozen=True)
class LabelledFrame:
    """What perception hands the map for one sampled frame."""

    frame: Frame
    channel: np.ndarray  # (h, w) uint8 class id of each pixel
    confidence: np.ndarray  # (h, w) float32 probability of that class: the pixel's vote weight
    depth: np.ndarray  # (h', w') float32 distance along the optical axis, map units (0: none)
    pose: np.ndarray  # (4, 4) camera-to-world
    featureless: bool = False  # black, blank or open water: keeps its place in the path, adds nothing to the map


HEALTH_KEYS = ("frames_with_non_finite_labels", "frames_with_non_finite_depth", "non_finite_motions",
               "frames_with_depth_disagreeing_with_sfm")
MAX_DEPTH_DISAGREEMENT = 0.2  # network depth off a keyframe's SfM depth by more (median, relative) is not used


class NetworkStream:
    """Labels from the segmenter (smoothed over time), depth and chained poses from the depth/pose networks.

    Non-finite network outputs are neutralised and counted in `health`: such pixels get no vote and no depth, and
    such a motion is taken as no motion. A motion into or out of a featureless frame (black, blank, open water) is
    taken as no motion too: the pose network has nothing to go by.

    With a `camera_path` (see `use_camera_path`) the poses come from it, the pose network is not run, and each
    depth map is scaled onto the SfM points of the latest keyframe; a keyframe whose depth still disagrees with
    its points is left out of the map and counted.
    """

    def __init__(self, source: FrameSource, segmenter: Segmenter, estimator: DepthPoseEstimator,
                 timer: StageTimer, batch_size: int = 4, smooth_labels: bool = True, detect_tape: bool = True):
        self.source, self.segmenter, self.estimator = source, segmenter, estimator
        self.batch_size, self.timer = batch_size, timer
        self.detect_tape = detect_tape
        self.trajectory = TrajectoryBuilder()
        self.smoother = TemporalSmoother(smooth_labels)
        self.previous_featureless = False
        self.health = {key: 0 for key in HEALTH_KEYS}
        self.next_frame = 0  # the first frame not yet through the networks
        self.ending = False
        self.camera_path = None
        self.depth_scale = 1.0  # of the latest keyframe, for the frames after it
        self.network_depth_trusted = True  # whether the latest keyframe's network depth agreed with SfM
        self.disagreements: list[float] = []  # median relative disagreement of each keyframe's network depth
        self.keyframe_depth: tuple[int, np.ndarray] | None = None  # the latest keyframe's sweep depth

    def use_camera_path(self, camera_path) -> None:
        """Take poses from this `reefmap.run.trajectory.CameraPath` instead of the pose network."""
        self.camera_path = camera_path

    def __iter__(self) -> Iterator[LabelledFrame]:
        frames = prefetch(self.source.frames_from(self.next_frame))
        for raw in perceive(frames, self.segmenter, self.estimator, self.batch_size, self.timer,
                            with_motion=self.camera_path is None, tape_detection=self.detect_tape):
            self.next_frame = raw.frame.index + 1
            for item in self.smoother.push(raw):
                yield self._labelled(item)
        self.ending = True
        for item in self.smoother.finish():
            yield self._labelled(item)

    def between_batches(self) -> bool:
        """Whether the frame given out last ended a batch, so that the state can be taken now."""
        return not self.ending and self.next_frame % self.batch_size == 0

    def _labelled(self, item: Perception) -> LabelledFrame:
        probabilities, relative = item.probabilities, item.relative_pose
        featureless = is_featureless(item.frame.image)
        if relative is not None and (featureless or self.previous_featureless):
            relative = np.eye(4)
        self.previous_featureless = featureless
        if not np.isfinite(probabilities).all():
            self.health["frames_with_non_finite_labels"] += 1
            probabilities = np.nan_to_num(probabilities, nan=0.0, posinf=0.0, neginf=0.0)
        if not np.isfinite(item.depth).all():
            self.health["frames_with_non_finite_depth"] += 1
        if relative is not None and not np.isfinite(relative).all():
            self.health["non_finite_motions"] += 1
            relative = np.eye(4)
        confidence, channel = torch.from_numpy(probabilities).max(dim=0)  # one threaded pass over the classes
        if self.camera_path is None:
            pose, depth = self.trajectory.add(relative), item.depth
        else:
            pose, depth = self.camera_path.poses[item.frame.index], self._aligned_depth(item)
        return LabelledFrame(item.frame, channel.numpy().astype(np.uint8), confidence.numpy(), depth, pose, featureless)

    def _aligned_depth(self, item: Perception) -> np.ndarray:
        """Depth in the camera path's units. A keyframe: its plane-sweep depth. Another frame: the latest keyframe's
        sweep depth moved into this camera. Network depth, scaled onto the latest keyframe's sweep (onto its SfM
        points when it had no sweep), only for frames with no sweep depth at all, and not while the network
        disagrees with the latest keyframe's SfM depth. Holes in the sweep stay holes: filled with network depth
        they made the fused map several times less accurate (the fusion covers them from other frames)."""
        index = item.frame.index
        swept = self.camera_path.swept_depth(index)
        view = self.camera_path.views[index]
        network = item.depth
        if swept is not None:
            self.keyframe_depth = (index, swept)
            network = cv2.resize(network, swept.shape[::-1], interpolation=cv2.INTER_NEAREST)
            self._take_fit(fit_depth_scale(network, swept))
        elif len(view):
            self._take_fit(depth_scale(network, view, self.source.size))
        elif self.keyframe_depth is not None:
            keyframe, keyframe_depth = self.keyframe_depth
            h, w = keyframe_depth.shape
            K = scale_intrinsics(self.source.camera.K, self.source.size, (w, h))
            poses = self.camera_path.poses
            swept = reproject_depth(keyframe_depth, K, invert_pose(poses[index]) @ poses[keyframe])
        if swept is not None:
            return swept
        if not self.network_depth_trusted:
            self.health["frames_with_depth_disagreeing_with_sfm"] += 1
            return np.zeros_like(network)
        return network * np.float32(self.depth_scale)

    def _take_fit(self, fit: tuple[float, float] | None) -> None:
        """Adopt a keyframe's (scale, disagreement) of network depth against its SfM depth."""
        if fit is not None:
            self.depth_scale, disagreement = fit
            self.network_depth_trusted = disagreement <= MAX_DEPTH_DISAGREEMENT
            self.disagreements.append(disagreement)

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to continue from (see `restore`); take it only `between_batches`."""
        previous = self.estimator.previous_frame
        state = {
            "next_frame": np.array(self.next_frame), "trajectory_pose": self.trajectory.current,
            "trajectory_count": np.array(self.trajectory.count), "previous_featureless": np.array(self.previous_featureless),
            "health": np.array([self.health[k] for k in HEALTH_KEYS]), "smoother_started": np.array(self.smoother.started),
            "window_size": np.array(len(self.smoother.window)), "depth_scale": np.array(self.depth_scale),
            "network_depth_trusted": np.array(self.network_depth_trusted),
            "disagreements": np.array(self.disagreements, np.float64),
            "keyframe": np.array(-1 if self.keyframe_depth is None else self.keyframe_depth[0]),
        }
        if previous is not None:
            state["estimator_previous"] = previous
        for k, item in enumerate(self.smoother.window):
            state |= {f"window{k}_index": np.array(item.frame.index), f"window{k}_time": np.array(item.frame.time_s),
                      f"window{k}_image": item.frame.image, f"window{k}_probabilities": item.probabilities,
                      f"window{k}_depth": item.depth}
            if item.relative_pose is not None:
                state[f"window{k}_relative"] = item.relative_pose
        return state

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.next_frame = int(state["next_frame"])
        self.trajectory.current, self.trajectory.count = state["trajectory_pose"], int(state["trajectory_count"])
        self.previous_featureless = bool(state["previous_featureless"])
        self.depth_scale = float(state["depth_scale"])
        self.network_depth_trusted = bool(state["network_depth_trusted"])
        self.disagreements = [float(v) for v in state["disagreements"]]
        keyframe = int(state["keyframe"])
        self.keyframe_depth = None if keyframe < 0 else (keyframe, self.camera_path.swept_depth(keyframe))
        self.health = dict(zip(HEALTH_KEYS, (int(v) for v in state["health"])))
        self.smoother.started = bool(state["smoother_started"])
        self.estimator.previous_frame = state.get("estimator_previous")
        self.smoother.window.clear()
        for k in range(int(state["window_size"])):
            frame = Frame(int(state[f"window{k}_index"]), float(state[f"window{k}_time"]), state[f"window{k}_image"])
            self.smoother.window.append(Perception(frame, state[f"window{k}_probabilities"], state[f"window{k}_depth"],
                                                   state.get(f"window{k}_relative")))


class OracleStream:
    """True labels, depth and poses of a synthetic transect for each sampled frame."""

    def __init__(self, source: FrameSource, truth: TruthReader, taxonomy: Taxonomy, timer: StageTimer):
        self.source, self.truth, self.taxonomy, self.timer = source, truth, taxonomy, timer
        self.health = {key: 0 for key in HEALTH_KEYS}
        self.next_frame = 0

    def __iter__(self) -> Iterator[LabelledFrame]:
        iterator = self.source.frames_from(self.next_frame)
        while True:
            with self.timer.stage("decode"):
                frame = next(iterator, None)
            if frame is None:
                return
            self.next_frame = frame.index + 1
            with self.timer.stage("oracle", 1):
                item = LabelledFrame(frame, *self.truth.frame(frame, self.source, self.taxonomy.ids),
                                     featureless=is_featureless(frame.image))
            yield item

    def between_batches(self) -> bool:
        return True

    def state(self) -> dict[str, np.ndarray]:
        return {"next_frame": np.array(self.next_frame)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.next_frame = int(state["next_frame"])
