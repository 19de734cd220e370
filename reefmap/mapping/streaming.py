"""The map as the camera swims along the transect: blocks of the map the camera has left behind (not seen, nor any
block next to them, over the last stretch of its path) are finalised (their surface points labelled by their votes)
and freed from memory, so memory follows the stretch of reef in view, not the length of the video."""

from __future__ import annotations

import numpy as np

from reefmap.mapping.spill import FinishedPoints
from reefmap.mapping.surface import BLOCK_RESOLUTION, TRUNCATION_VOXELS, SurfaceVolume
from reefmap.mapping.voxels import LabelledCloud, VoxelMap, block_keys, in_sorted, pack_cells, sorted_index
from reefmap.runtime.memory import return_freed_memory

TRAIL = 0.25  # share of the camera's reach it must travel without seeing a block before the block is left behind
FINALISE_STEP = 0.5  # finalise again once the camera has travelled this share of the trail
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

    Every time the camera has travelled half its `trail` (a quarter of its `reach` unless given), the open blocks it
    has not seen over the last `trail` of its path, with none of their 26 neighbours seen either, are finalised: their
    surface points are labelled and go to `finished` (in memory, or files of a folder); so are blocks farther than
    `reach`, which no frame can change. A finalised block is freed once none of its neighbours is still open, so the
    points of open blocks always see complete neighbourhoods. A block is finalised once: should the camera come back,
    what it sees there again is not added twice.
    """

    def __init__(self, voxel_size: float, num_classes: int, class_ids: np.ndarray, max_depth: float, reach: float,
                 finished: FinishedPoints | None = None, trail: float | None = None):
        self.votes = VoxelMap(voxel_size, num_classes)
        self.surface = SurfaceVolume(voxel_size, max_depth)
        self.class_ids = np.asarray(class_ids)
        self.reach = float(reach)
        self.trail = TRAIL * self.reach if trail is None else float(trail)
        self.finalised_blocks = np.zeros(0, np.int64)  # sorted block keys
        self.finished = finished if finished is not None else FinishedPoints()
        self.travel = 0.0  # length of the camera path so far
        self.finalised_travel = 0.0  # `travel` at the last finalisation
        self.last_centre: np.ndarray | None = None
        self.sighted_keys = np.zeros(0, np.int64)  # sorted keys of the allocated blocks ...
        self.sighted_at = np.zeros(0, np.float64)  # ... and the `travel` when a frame last updated each

    @property
    def voxel_size(self) -> float:
        return self.votes.voxel_size

    def add(self, points: np.ndarray, channels: np.ndarray, weights: np.ndarray, colours: np.ndarray,
            depth: np.ndarray, K: np.ndarray, pose: np.ndarray) -> None:
        """One frame: its back-projected (N, 3) points with their class channels, vote weights and (N, 3) uint8
        colours, and the (H, W) depth map they came from, seen by pinhole `K` from camera-to-world `pose`."""
        centre = np.asarray(pose, np.float64)[:3, 3]
        if self.last_centre is not None:
            self.travel += float(np.linalg.norm(centre - self.last_centre))
        self.last_centre = centre
        self._sighted(pack_cells(self.surface.integrate(depth, K, pose)))
        self.votes.add_frame(points, channels, weights, colours)
        if self.travel - self.finalised_travel >= FINALISE_STEP * self.trail:
            self.finalise_behind(centre)
            self.finalised_travel = self.travel

    def _sighted(self, keys: np.ndarray) -> None:
        """Record that a frame updated the blocks with these keys at the current `travel`."""
        keys = np.unique(keys)
        at = sorted_index(keys, self.sighted_keys)
        self.sighted_at[at[at >= 0]] = self.travel
        new = keys[at < 0]
        if len(new):
            keys = np.concatenate([self.sighted_keys, new])
            order = np.argsort(keys, kind="stable")
            self.sighted_keys = keys[order]
            self.sighted_at = np.concatenate([self.sighted_at, np.full(len(new), self.travel)])[order]

    def finalise_behind(self, centre: np.ndarray) -> None:
        """Finalise the open blocks left behind (unseen, with their neighbours, over the last `trail` of travel, or
        farther than `reach` from `centre`), and free the finalised blocks no open block touches."""
        blocks = self.surface.block_coordinates()
        keys = pack_cells(blocks)
        is_open = ~in_sorted(keys, self.finalised_blocks)
        at = sorted_index(keys, self.sighted_keys)
        recent = np.where(at >= 0, self.sighted_at[np.maximum(at, 0)], self.travel) > self.travel - self.trail
        far = np.linalg.norm((blocks + 0.5) * self.surface.block_size - centre, axis=1) > self.reach
        leaving_mask = is_open & (far | ~in_sorted(keys, _with_neighbours(blocks[recent & ~far])))
        leaving = np.sort(keys[leaving_mask])
        if len(leaving):
            points = self.surface.surface_points()
            inside = in_sorted(block_keys(points, self.voxel_size, BLOCK_RESOLUTION), leaving)
            self.finished.append(self.votes.cloud(self.class_ids, points[inside]))
            self.finalised_blocks = np.union1d(self.finalised_blocks, leaving)
        free = self.finalised_blocks[~in_sorted(self.finalised_blocks, _with_neighbours(blocks[is_open & ~leaving_mask]))]
        self.surface.erase_blocks(blocks[in_sorted(keys, free)])
        self.votes.drop_blocks(free, BLOCK_RESOLUTION)
        kept = ~in_sorted(self.sighted_keys, free)
        self.sighted_keys, self.sighted_at = self.sighted_keys[kept], self.sighted_at[kept]

    def cloud(self) -> LabelledCloud:
        """The whole map as labelled surface points: the finalised part in the order it was finalised, then the
        open part. Frees the open part's stores, so it can be taken once."""
        points = self.surface.surface_points()
        is_open = ~in_sorted(block_keys(points, self.voxel_size, BLOCK_RESOLUTION), self.finalised_blocks)
        self.finished.append(self.votes.cloud(self.class_ids, points[is_open]))
        self.votes = self.surface = None
        del points, is_open
        return_freed_memory()  # the open map's stores, before the whole cloud is read back
        return self.finished.take_all()

    def state(self) -> dict[str, np.ndarray]:
        """Everything the map holds, as arrays (see `restore`)."""
        return {**{f"votes_{k}": v for k, v in self.votes.state().items()},
                **{f"surface_{k}": v for k, v in self.surface.state().items()},
                **{f"finished_{k}": v for k, v in self.finished.state().items()},
                "finalised_blocks": self.finalised_blocks, "sighted_keys": self.sighted_keys,
                "sighted_at": self.sighted_at, "travel": np.array([self.travel, self.finalised_travel]),
                "last_centre": np.zeros(0) if self.last_centre is None else self.last_centre}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a `state()`: later frames map exactly as if the map had never stopped."""
        self.votes.restore({k[6:]: v for k, v in state.items() if k.startswith("votes_")})
        self.surface.restore({k[8:]: v for k, v in state.items() if k.startswith("surface_")})
        self.finished.restore({k[9:]: v for k, v in state.items() if k.startswith("finished_")})
        self.finalised_blocks = state["finalised_blocks"]
        self.sighted_keys, self.sighted_at = state["sighted_keys"], state["sighted_at"]
        self.travel, self.finalised_travel = (float(x) for x in state["travel"])
        self.last_centre = state["last_centre"] if len(state["last_centre"]) else None


def _with_neighbours(blocks: np.ndarray) -> np.ndarray:
    """Sorted unique keys of the (M, 3) integer `blocks` and of their 26 neighbours."""
    return np.unique(pack_cells((blocks[:, None, :] + _AROUND).reshape(-1, 3)))
