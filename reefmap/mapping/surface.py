"""The map's surface by truncated signed-distance fusion of depth maps (Open3D's VoxelBlockGrid): each voxel near a
surface averages its signed distance along the rays of every frame that saw it, so the surface is as thin as the
depth's agreement between frames, not as thick as one frame's depth noise."""

from __future__ import annotations

import numpy as np

from reefmap.runtime.o3d import open3d

TRUNCATION_VOXELS = 6.0  # signed distances are clipped at this many voxels in front of and behind each depth sample
MIN_WEIGHT = 2.0  # a surface must be seen by this many frames (fewer when fewer were fused) to enter the map
BLOCK_RESOLUTION = 8  # voxels per block edge: blocks of 8^3 voxels are allocated where depth lands


def is_empty_extraction(error: RuntimeError) -> bool:
    """Whether Open3D failed only because no voxel had enough weight to give a point (it then fails setting the
    colours of an empty cloud)."""
    return "SetPointColors" in str(error) and "shape {0}" in str(error)


class SurfaceVolume:
    """Streaming TSDF volume: `integrate` one depth map at a time, then `surface_points` for the fused surface.

    Memory grows with the surface area mapped (blocks are allocated only around depth samples), not with the
    number of frames.
    """

    def __init__(self, voxel_size: float, max_depth: float, truncation_voxels: float = TRUNCATION_VOXELS):
        self.voxel_size, self.max_depth, self.truncation_voxels = float(voxel_size), float(max_depth), truncation_voxels
        self.frames = 0
        self.volume = self._empty_volume()

    def _empty_volume(self):
        o3d = open3d()
        return o3d.t.geometry.VoxelBlockGrid(("tsdf", "weight"), (o3d.core.float32, o3d.core.float32), ((1), (1)),
                                             self.voxel_size, BLOCK_RESOLUTION, 1000)

    def integrate(self, depth_m: np.ndarray, K: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Fuse one (H, W) depth map (map units along the optical axis; 0 = no depth) seen by pinhole `K` (3, 3)
        from camera-to-world `pose` (4, 4); returns the (M, 3) int64 coordinates of the blocks it updated."""
        if not (depth_m > 0).any():
            return np.zeros((0, 3), np.int64)
        o3d = open3d()
        core = o3d.core
        image = o3d.t.geometry.Image(core.Tensor(np.ascontiguousarray(depth_m, dtype=np.float32)))
        intrinsic = core.Tensor(np.asarray(K, np.float64))
        extrinsic = core.Tensor(np.linalg.inv(np.asarray(pose, np.float64)))
        blocks = self.volume.compute_unique_block_coordinates(image, intrinsic, extrinsic, 1.0, self.max_depth,
                                                              self.truncation_voxels)
        self.volume.integrate(blocks, image, intrinsic, extrinsic, 1.0, self.max_depth, self.truncation_voxels)
        self.frames += 1
        return blocks.numpy().astype(np.int64)

    @property
    def block_size(self) -> float:
        return self.voxel_size * BLOCK_RESOLUTION

    def block_coordinates(self) -> np.ndarray:
        """(M, 3) int64 integer coordinates of the allocated blocks (a block spans `block_size` per axis)."""
        hashmap = self.volume.hashmap()
        return hashmap.key_tensor()[hashmap.active_buf_indices()].numpy().astype(np.int64)

    def erase_blocks(self, coordinates: np.ndarray) -> None:
        """Free the blocks at (M, 3) integer `coordinates`; a later frame that sees there allocates them afresh.

        Their signed distances and weights are zeroed first: Open3D hands a freed slot to the next new block as it is,
        and stale weights there would make surfaces out of another block's old distances.
        """
        if len(coordinates) == 0:
            return
        core = open3d().core
        keys = core.Tensor(np.ascontiguousarray(coordinates, np.int32))
        slots, found = self.volume.hashmap().find(keys)
        slots = slots[found].to(core.int64)
        for name in ("tsdf", "weight"):
            self.volume.attribute(name)[slots] = 0.0
        self.volume.hashmap().erase(keys)

    def surface_points(self) -> np.ndarray:
        """(N, 3) float32 points on the fused surface (zero crossings of the signed distance between neighbouring
        voxels), seen by at least `MIN_WEIGHT` frames; sorted, so the same fusion always gives the same array."""
        if self.frames == 0 or self.volume.hashmap().size() == 0:
            return np.zeros((0, 3), np.float32)
        try:
            cloud = self.volume.extract_point_cloud(min(MIN_WEIGHT, float(self.frames)))
        except RuntimeError as exc:
            if not is_empty_extraction(exc):
                raise  # an Open3D failure of its own: not to be reported as an empty map
            return np.zeros((0, 3), np.float32)
        points = cloud.point.positions.numpy().astype(np.float32)
        return points[np.lexsort(points.T[::-1])]

    def state(self) -> dict[str, np.ndarray]:
        """The allocated blocks (keys, signed distances, weights) and the frame count, as arrays (see `restore`)."""
        hashmap = self.volume.hashmap()
        # in buffer order, so a restored volume lays its blocks out the same way
        active = open3d().core.Tensor(np.sort(hashmap.active_buf_indices().numpy()))
        return {"block_keys": hashmap.key_tensor()[active].numpy(),
                "block_tsdf": self.volume.attribute("tsdf")[active].numpy(),
                "block_weight": self.volume.attribute("weight")[active].numpy(),
                "frames": np.array(self.frames)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a `state()`: later frames fuse exactly as if the volume had never stopped."""
        core = open3d().core
        self.volume = self._empty_volume()
        self.frames = int(state["frames"])
        if len(state["block_keys"]):
            self.volume.hashmap().insert(core.Tensor(np.ascontiguousarray(state["block_keys"], np.int32)),
                                         [core.Tensor(np.ascontiguousarray(state["block_tsdf"], np.float32)),
                                          core.Tensor(np.ascontiguousarray(state["block_weight"], np.float32))])
