import numpy as np
import pytest

from reefmap.geometry.backproject import backproject
from reefmap.geometry.transforms import transform_points
from reefmap.mapping.spill import FinishedPoints
from reefmap.mapping.streaming import StreamingMap, camera_reach
from reefmap.mapping.voxels import voxel_keys

K = np.array([[100.0, 0.0, 79.5], [0.0, 100.0, 49.5], [0.0, 0.0, 1.0]])
SIZE = (160, 100)
IDS = np.array([5, 18], np.int32)  # sand (y < 0), rubble (y >= 0)
VOXEL, MAX_DEPTH = 0.05, 1.2
DOWN = np.diag([1.0, -1.0, -1.0])  # camera looking straight down at the plane z = 0.01


def _frames(xs):
    for x in xs:
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = DOWN, [x, 0.0, 1.01]
        depth = np.full((SIZE[1], SIZE[0]), 1.0, np.float32)
        points = transform_points(pose, backproject(depth, K).reshape(-1, 3))
        channels = (points[:, 1] >= 0).astype(np.int64)
        colours = np.full((len(points), 3), 100, np.uint8)
        yield points, channels, np.ones(len(points), np.float32), colours, depth, K, pose


def _map(finished=None, reach=None, trail=None):
    reach = reach or camera_reach(K, SIZE, MAX_DEPTH, VOXEL)
    return StreamingMap(VOXEL, 2, IDS, MAX_DEPTH, reach, finished, trail)


def _mapped(xs, reach=None, trail=None):
    streaming = _map(reach=reach, trail=trail)
    for frame in _frames(xs):
        streaming.add(*frame)
    return streaming


def test_reach_covers_the_longest_ray_the_truncation_band_and_a_block():
    corner = np.linalg.norm([80.5 / 100, 50.5 / 100, 1.0])  # the image corner (160, 100) is farthest from (79.5, 49.5)
    assert camera_reach(K, SIZE, 1.2, 0.05, 6.0) == pytest.approx(1.2 * corner + 0.3 + np.sqrt(3) * 0.4)


def test_finalising_behind_the_camera_frees_memory_and_keeps_the_map():
    xs = np.arange(0, 10.0, 0.1)
    streamed, whole = _mapped(xs), _mapped(xs, reach=np.inf)
    assert streamed.finished.count > 0
    assert len(streamed.surface.block_coordinates()) < 0.4 * len(whole.surface.block_coordinates())
    assert len(streamed.votes) < 0.4 * len(whole.votes)
    a, b = _in_voxel_order(streamed.cloud()), whole.cloud()
    assert len(a) > 3000
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.n_views, b.n_views)
    assert ((a.labels == 18) == (a.points[:, 1] >= 0)).mean() > 0.98


def test_blocks_left_behind_are_finalised_long_before_they_are_out_of_reach():
    xs = np.arange(0, 10.0, 0.1)
    reach = camera_reach(K, SIZE, 6.0, VOXEL)  # depth could reach 6 m; the seabed is 1 m below the camera
    trailing, reach_only, whole = (_mapped(xs, reach, trail) for trail in (None, reach, np.inf))
    assert whole.finished.count == 0 and reach_only.finished.count > 0
    open_blocks = len(trailing.surface.block_coordinates())
    assert open_blocks < 0.6 * len(reach_only.surface.block_coordinates())
    a, b = _in_voxel_order(trailing.cloud()), whole.cloud()
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.n_views, b.n_views)


def _in_voxel_order(cloud):
    return cloud.take(np.argsort(voxel_keys(cloud.points, VOXEL)))


def test_a_stretch_seen_again_after_it_was_finalised_is_not_mapped_twice():
    there_and_back = np.concatenate([np.arange(0, 8.0, 0.1), np.arange(8.0, 0, -0.1)])
    cloud = _mapped(there_and_back).cloud()
    keys = voxel_keys(cloud.points, VOXEL)
    assert len(np.unique(keys)) == len(keys)
    assert np.abs(cloud.points[:, 2] - 0.01).max() < VOXEL


@pytest.mark.parametrize("in_files", [False, True])
def test_a_restored_map_continues_exactly(in_files, tmp_path):
    frames = list(_frames(np.arange(0, 8.0, 0.1)))
    whole, first = _map(), _map(FinishedPoints(tmp_path if in_files else None))
    for frame in frames:
        whole.add(*frame)
    for frame in frames[:50]:
        first.add(*frame)
    state = {k: np.array(v, copy=True) for k, v in first.state().items()}
    for frame in frames[50:65]:  # the killed run went on finalising after its last checkpoint
        first.add(*frame)
    if in_files:  # chunks written after the checkpoint are on disk and must not come back
        assert first.finished.count > int(state["finished_chunks"]) > 0
    else:
        assert len(state["finished_points"]) > 0
    resumed = _map(FinishedPoints(tmp_path if in_files else None))
    resumed.restore(state)
    for frame in frames[50:]:
        resumed.add(*frame)
    a, b = whole.cloud(), resumed.cloud()
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.confidence, b.confidence)


@pytest.mark.parametrize("in_files", [False, True])
def test_a_store_that_got_no_points_gives_an_empty_cloud(in_files, tmp_path):
    """A map whose frames all fell outside the depth range appends only empty chunks (which are not kept)."""
    store = FinishedPoints(tmp_path if in_files else None)
    store.append(_mapped([]).cloud())
    assert store.count == 0 and len(store.take_all()) == 0
