import numpy as np
import pytest

from reefmap.mapping.surface import SurfaceVolume

K = np.array([[100.0, 0.0, 79.5], [0.0, 100.0, 49.5], [0.0, 0.0, 1.0]])


def _noisy_views(n: int, noise_m: float, seed: int = 0):
    """`n` cameras sliding along x at 2 m above a plane z = 0 (looking straight down), depth with Gaussian noise."""
    rng = np.random.default_rng(seed)
    down = np.diag([1.0, -1.0, -1.0])  # camera z forward = world -z, camera y down = world -y
    for i in range(n):
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = down, [0.05 * i, 0.0, 2.005]  # the plane z = 0.005 lies between voxel centres
        yield (2.0 + noise_m * rng.standard_normal((100, 160))).astype(np.float32), pose


def test_fusion_averages_depth_noise_along_the_rays():
    volume = SurfaceVolume(voxel_size=0.02, max_depth=8.0)
    for depth, pose in _noisy_views(12, noise_m=0.03):
        volume.integrate(depth, K, pose)
    points = volume.surface_points()
    seen_by_all = (np.abs(points[:, 1]) < 0.8) & (points[:, 0] > -1.0) & (points[:, 0] < 1.5)
    error = points[seen_by_all, 2] - 0.005
    assert len(error) > 10_000
    assert abs(error.mean()) < 0.003  # the plane, not shifted
    # one frame's depth is off by 2.0 cm (median) and 4.9 cm (90th percentile); the fused surface by a third of that
    assert np.median(np.abs(error)) < 0.0075 and np.percentile(np.abs(error), 90) < 0.0165


def test_surfaces_seen_by_too_few_frames_stay_out():
    volume = SurfaceVolume(voxel_size=0.02, max_depth=8.0)
    views = list(_noisy_views(6, noise_m=0.0))
    for depth, pose in views:
        volume.integrate(depth, K, pose)
    stray = np.zeros_like(views[0][0])
    stray[40:60, 70:90] = 1.0  # one frame sees something 1 m above the plane
    volume.integrate(stray, K, views[0][1])
    z = volume.surface_points()[:, 2]
    assert (np.abs(z - 0.005) < 0.01).mean() > 0.99 and not (z > 0.5).any()


def test_pixels_without_depth_add_nothing():
    volume = SurfaceVolume(voxel_size=0.02, max_depth=8.0)
    volume.integrate(np.zeros((100, 160), np.float32), K, np.eye(4))
    assert volume.frames == 0 and len(volume.surface_points()) == 0


def test_a_restored_volume_continues_exactly():
    views = list(_noisy_views(8, noise_m=0.02, seed=3))
    whole = SurfaceVolume(0.02, 8.0)
    first = SurfaceVolume(0.02, 8.0)
    for depth, pose in views:
        whole.integrate(depth, K, pose)
    for depth, pose in views[:5]:
        first.integrate(depth, K, pose)
    resumed = SurfaceVolume(0.02, 8.0)
    resumed.restore({k: np.array(v, copy=True) for k, v in first.state().items()})
    for depth, pose in views[5:]:
        resumed.integrate(depth, K, pose)
    np.testing.assert_array_equal(whole.surface_points(), resumed.surface_points())


def test_erased_blocks_leave_nothing_behind_for_the_blocks_that_reuse_them():
    (near, near_pose), *_ = _noisy_views(1, noise_m=0.0)
    far_pose = near_pose.copy()
    far_pose[0, 3] = 5.0
    reused, fresh = SurfaceVolume(0.02, 8.0), SurfaceVolume(0.02, 8.0)
    for _ in range(2):
        reused.integrate(near, K, near_pose)
    reused.erase_blocks(reused.block_coordinates())
    assert len(reused.block_coordinates()) == 0
    edge = np.zeros_like(near)
    edge[:, :40] = 2.0  # sees a quarter of the view: most of the freed slots are reused by blocks with unseen voxels
    for volume in (reused, fresh):
        for _ in range(2):
            volume.integrate(edge, K, far_pose)
    np.testing.assert_array_equal(reused.surface_points(), fresh.surface_points())


def test_an_empty_extraction_is_an_empty_surface_but_other_open3d_errors_are_not(monkeypatch):
    views = list(_noisy_views(3, noise_m=0.0))
    once = SurfaceVolume(voxel_size=0.02, max_depth=8.0)
    once.integrate(*views[0][:1], K, views[0][1])
    assert len(once.surface_points()) == 0  # one view gives no voxel the weight of a surface point
    once.erase_blocks(once.block_coordinates())
    assert len(once.surface_points()) == 0  # and with every block freed there is nothing to extract from

    volume = SurfaceVolume(voxel_size=0.02, max_depth=8.0)
    for depth, pose in views:
        volume.integrate(depth, K, pose)
    assert len(volume.surface_points()) > 0

    class Failing:
        """Stands for the volume when Open3D fails for a reason of its own."""

        def __init__(self, real):
            self.real = real

        def hashmap(self):
            return self.real.hashmap()

        def extract_point_cloud(self, *args):
            raise RuntimeError("[Open3D Error] CUDA out of memory")

    volume.volume = Failing(volume.volume)
    with pytest.raises(RuntimeError, match="out of memory"):
        volume.surface_points()
