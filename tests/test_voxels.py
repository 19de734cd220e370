import numpy as np
import pytest

from reefmap.mapping.voxels import VoxelMap, voxel_keys

IDS = np.array([5, 18, 22], dtype=np.int32)  # sand, rubble, branching alive


def test_voxel_keys_separate_neighbours_and_group_same_voxel():
    pts = np.array([[0.01, 0.01, 0.01], [0.09, 0.05, 0.02], [0.11, 0.0, 0.0], [-0.01, 0.0, 0.0]])
    keys = voxel_keys(pts, 0.1)
    assert keys[0] == keys[1]
    assert len(set(keys.tolist())) == 3


def test_votes_across_frames_pick_majority_with_confidence():
    vmap = VoxelMap(voxel_size=1.0, num_classes=3)
    a, b = [0.2, 0.2, 0.2], [5.5, 0.5, 0.5]
    # frame 1: voxel A seen as sand (0.9) and rubble (0.6); voxel B as branching (1.0)
    vmap.add_frame(np.array([a, a, b]), np.array([0, 1, 2]), np.array([0.9, 0.6, 1.0]),
                   np.array([[10, 20, 30], [30, 40, 50], [200, 0, 0]], dtype=np.uint8))
    # frame 2: voxel A seen as rubble (0.7)
    vmap.add_frame(np.array([[0.4, 0.4, 0.4]]), np.array([1]), np.array([0.7]), np.array([[50, 60, 70]], dtype=np.uint8))
    # the fused surface: two points in voxel A (one point at their mean), one in voxel B
    cloud = vmap.cloud(IDS, np.array([[0.5, 0.5, 0.25], [0.5, 0.5, 0.75], [5.5, 0.5, 0.5]]))
    assert len(cloud) == 2
    order = np.argsort(cloud.points[:, 0])
    labels, conf, views = cloud.labels[order], cloud.confidence[order], cloud.n_views[order]
    assert labels.tolist() == [18, 22]  # rubble wins A with 1.3 against sand 0.9
    np.testing.assert_allclose(conf, [1.3 / 2.2, 1.0], rtol=1e-6)
    assert views.tolist() == [2, 1]
    np.testing.assert_allclose(cloud.points[order][0], [0.5, 0.5, 0.5], rtol=1e-6)
    assert cloud.colours[order][0].tolist() == [30, 40, 50]


def test_surface_points_take_the_nearest_voxel_with_votes():
    vmap = VoxelMap(voxel_size=1.0, num_classes=3)
    # votes in voxels (0, 0, 0): sand, (1, 0, 0): rubble, (0, 1, 1): branching
    vmap.add_frame(np.array([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [0.5, 1.5, 1.5]]), np.array([0, 1, 2]),
                   np.ones(3), np.zeros((3, 3), np.uint8))
    surface = np.array([
        [0.5, 0.5, 0.9],   # its own voxel (0, 0, 0): sand
        [0.5, 0.5, 1.2],   # (0, 0, 1): face neighbour (0, 0, 0) sand before edge neighbour (0, 1, 1) branching
        [1.5, -0.5, 0.5],  # (1, -1, 0): face neighbour (1, 0, 0) rubble
        [-0.5, 2.5, 2.5],  # (-1, 2, 2): corner neighbour (0, 1, 1) branching
        [5.0, 5.0, 5.0],   # nothing around it: left out
    ])
    cloud = vmap.cloud(IDS, surface)
    order = [int(np.argmin(np.abs(cloud.points - p).sum(1))) for p in surface[:4]]
    np.testing.assert_allclose(cloud.points[order], surface[:4], atol=1e-6)
    assert len(cloud) == 4 and cloud.labels[order].tolist() == [5, 5, 18, 22]


def test_streaming_merges_equal_one_shot():
    rng = np.random.default_rng(1)
    frames = [(rng.uniform(0, 3, (500, 3)), rng.integers(0, 3, 500), rng.uniform(0.2, 1, 500),
               rng.integers(0, 255, (500, 3)).astype(np.uint8)) for _ in range(6)]
    streamed = VoxelMap(0.5, 3, merge_points=700)
    buffered = VoxelMap(0.5, 3, merge_points=10**9)
    for f in frames:
        streamed.add_frame(*f)
        buffered.add_frame(*f)
    surface = rng.uniform(0, 3, (2000, 3))
    a, b = streamed.cloud(IDS, surface), buffered.cloud(IDS, surface)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.n_views, b.n_views)
    np.testing.assert_allclose(a.points, b.points, rtol=1e-5)
    assert a.n_views.max() <= 6 and len(a) == len(streamed)


@pytest.mark.parametrize("name, chunk", [("c.las", 500_000), ("c.laz", 500_000), ("c.laz", 1)])
def test_las_export_keeps_classes_colours_and_extra_fields(tmp_path, monkeypatch, name, chunk):
    import laspy

    from reefmap.mapping import cloud as cloud_module
    from reefmap.mapping.cloud import write_las
    from reefmap.mapping.voxels import LabelledCloud

    monkeypatch.setattr(cloud_module, "WRITE_CHUNK_POINTS", chunk)  # 1: every point written as its own chunk
    cloud = LabelledCloud(points=np.array([[1.0, 2.0, 3.0], [1.5, 2.25, 2.9875]], np.float32),
                          colours=np.array([[255, 0, 10], [1, 2, 3]], np.uint8), labels=np.array([39, 5], np.int32),
                          confidence=np.array([0.5, 1.0], np.float32), n_views=np.array([3, 7], np.int32))
    write_las(cloud, tmp_path / name)
    las = laspy.read(tmp_path / name)
    assert las.header.are_points_compressed == name.endswith(".laz")
    assert las.header.point_format.id == 7 and las.classification.tolist() == [39, 5]
    np.testing.assert_allclose(np.stack([las.x, las.y, las.z], 1), cloud.points, atol=1e-3)
    assert (np.asarray(las.red) // 257).tolist() == [255, 1] and las.n_views.tolist() == [3, 7]
    np.testing.assert_allclose(las.confidence, [0.5, 1.0])


@pytest.mark.parametrize("chunk", [500_000, 2])
def test_ply_export_reads_back_whole_in_open3d(tmp_path, monkeypatch, chunk):
    from reefmap.mapping import cloud as cloud_module
    from reefmap.mapping.cloud import read_ply, write_ply
    from reefmap.mapping.voxels import LabelledCloud

    monkeypatch.setattr(cloud_module, "WRITE_CHUNK_POINTS", chunk)  # 2: the last chunk is shorter
    rng = np.random.default_rng(0)
    cloud = LabelledCloud(points=rng.normal(0, 10, (5, 3)).astype(np.float32),
                          colours=rng.integers(0, 256, (5, 3)).astype(np.uint8), labels=np.array([39, 5, 0, 18, 22], np.int32),
                          confidence=rng.uniform(0, 1, 5).astype(np.float32), n_views=np.array([3, 7, 0, 1, 2], np.int32))
    write_ply(cloud, tmp_path / "c.ply")
    back = read_ply(tmp_path / "c.ply")
    for name in LabelledCloud.FIELDS:
        np.testing.assert_array_equal(getattr(back, name), getattr(cloud, name), err_msg=name)


def test_a_restored_map_continues_exactly():
    from reefmap.mapping.voxels import VoxelMap

    rng = np.random.default_rng(0)
    frames = [(rng.uniform(0, 1, (500, 3)), rng.integers(0, 4, 500), rng.uniform(0.2, 1, 500),
               rng.integers(0, 255, (500, 3)).astype(np.uint8)) for _ in range(6)]
    whole = VoxelMap(0.1, 4, merge_points=1200)
    for f in frames:
        whole.add_frame(*f)
    first = VoxelMap(0.1, 4, merge_points=1200)
    for f in frames[:4]:
        first.add_frame(*f)
    state = {k: np.array(v, copy=True) for k, v in first.state().items()}
    assert len(first._pending) == 1  # one frame still buffered when the state was taken
    resumed = VoxelMap(0.1, 4, merge_points=1200)
    resumed.restore(state)
    for f in frames[4:]:
        resumed.add_frame(*f)
    surface = rng.uniform(0, 1, (3000, 3))
    a, b = whole.cloud(np.arange(1, 5), surface), resumed.cloud(np.arange(1, 5), surface)
    for field in ("points", "colours", "labels", "confidence", "n_views"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
