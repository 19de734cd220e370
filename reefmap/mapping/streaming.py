"""The map as the camera swims along the transect: blocks of the map the camera has left farther behind than any depth
it can measure are finalised (their surface points labelled by their votes) and freed from memory, so memory follows
the stretch of reef in view, not the length of the video."""

from __future__ import annotations

import numpy as np

from reefmap.mapping.spill import FinishedPoints
from reefmap.mapping.surface import BLOCK_RESOLUTION, TRUNCATION_VOXELS, SurfaceVolume
from reefmap.mapping.voxels import LabelledCloud, VoxelMap, block_keys, in_sorted, pack_cells

FINALISE_STEP = 0.5  # finalise again once the camera has moved this share of its reach
_AROUND = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T


def camera_reach(K: np.ndarray, size: tuple[int, int], max_depth: float, voxel_size: float,
                 truncation_voxels: float = TRUNCATION_VOXELS) -> float:
    """How far from the camera centre a frame can change the map: the longest ray to `max_depth` (at an image
    corner of (w, h) `size`), plus the signed-distance truncation band and a block's diagonal."""
    w, h = size
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64)
    longest_ray = np.linalg.norm(corners @ np.linalg.inv(K).T, axis=1).max()
    return float(max_depth * longest_ray + truncation_voxels * voxel_size
                 + np.sqrt(3) * BLOCK_RESOLUTION * voxel_size)


class StreamingMap:
    """Class votes (`VoxelMap`) and fused surface (`SurfaceVolume`) of the open part of the map, and the labelled
    points of the finalised part.

    Every time the camera has moved half its `reach`, the surface blocks farther than `reach` from it are finalised:
    their surface points are labelled and go to `finished` (in memory, or files of a folder); a finalised block is
    freed once none of its 26 neighbours is still open, so the points of open blocks always see complete
    neighbourhoods. A block is finalised once: should the camera come back, what it sees there again is not added
    twice.
    """

    def __init__(self, voxel_size: float, num_classes: int, class_ids: np.ndarray, max_depth: float, reach: float,
                 finished: FinishedPoints | None = None):
        self.votes = VoxelMap(voxel_size, num_classes)
        self.surface = SurfaceVolume(voxel_size, max_depth)
        self.class_ids = np.asarray(class_ids)
        self.reach = float(reach)
        self.finalised_blocks = np.zeros(0, np.int64)  # sorted block keys
        self.finished = finished if finished is not None else FinishedPoints()
        self.finalised_at: np.ndarray | None = None  # camera centre at the last finalisation

    @property
    def voxel_size(self) -> float:
        return self.votes.voxel_size

    def add(self, points: np.ndarray, channels: np.ndarray, weights: np.ndarray, colours: np.ndarray,
            depth: np.ndarray, K: np.ndarray, pose: np.ndarray) -> None:
        """One frame: its back-projected (N, 3) points with their class channels, vote weights and (N, 3) uint8
        colours, and the (H, W) depth map they came from, seen by pinhole `K` from camera-to-world `pose`."""
        self.surface.integrate(depth, K, pose)
        self.votes.add_frame(points, channels, weights, colours)
        centre = np.asarray(pose, np.float64)[:3, 3]
        if self.finalised_at is None:
            self.finalised_at = centre
        elif np.linalg.norm(centre - self.finalised_at) >= FINALISE_STEP * self.reach:
            self.finalise_beyond(centre)
            self.finalised_at = centre

    def finalise_beyond(self, centre: np.ndarray) -> None:
        """Finalise the open blocks farther than `reach` from `centre`, and free the finalised blocks no open block
        touches."""
        blocks = self.surface.block_coordinates()
        keys = pack_cells(blocks)
        is_open = ~in_sorted(keys, self.finalised_blocks)
        far = np.linalg.norm((blocks + 0.5) * self.surface.block_size - centre, axis=1) > self.reach
        leaving = np.sort(keys[is_open & far])
        if len(leaving):
            points = self.surface.surface_points()
            inside = in_sorted(block_keys(points, self.voxel_size, BLOCK_RESOLUTION), leaving)
            self.finished.append(self.votes.cloud(self.class_ids, points[inside]))
            self.finalised_blocks = np.union1d(self.finalised_blocks, leaving)
        still_open = blocks[is_open & ~far]
        touched = np.unique(pack_cells((still_open[:, None, :] + _AROUND).reshape(-1, 3)))
        free = self.finalised_blocks[~in_sorted(self.finalised_blocks, touched)]
        self.surface.erase_blocks(blocks[in_sorted(keys, free)])
        self.votes.drop_blocks(free, BLOCK_RESOLUTION)

    def cloud(self) -> LabelledCloud:
        """The whole map as labelled surface points: the finalised part in the order it was finalised, then the
        open part. Frees the open part's stores, so it can be taken once."""
        points = self.surface.surface_points()
        is_open = ~in_sorted(block_keys(points, self.voxel_size, BLOCK_RESOLUTION), self.finalised_blocks)
        self.finished.append(self.votes.cloud(self.class_ids, points[is_open]))
        self.votes = self.surface = None
        return self.finished.take_all()

    def state(self) -> dict[str, np.ndarray]:
        """Everything the map holds, as arrays (see `restore`)."""
        return {**{f"votes_{k}": v for k, v in self.votes.state().items()},
                **{f"surface_{k}": v for k, v in self.surface.state().items()},
                **{f"finished_{k}": v for k, v in self.finished.state().items()},
                "finalised_blocks": self.finalised_blocks,
                "finalised_at": np.zeros(0) if self.finalised_at is None else self.finalised_at}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a `state()`: later frames map exactly as if the map had never stopped."""
        self.votes.restore({k[6:]: v for k, v in state.items() if k.startswith("votes_")})
        self.surface.restore({k[8:]: v for k, v in state.items() if k.startswith("surface_")})
        self.finished.restore({k[9:]: v for k, v in state.items() if k.startswith("finished_")})
        self.finalised_blocks = state["finalised_blocks"]
        self.finalised_at = state["finalised_at"] if len(state["finalised_at"]) else None
