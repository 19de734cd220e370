import numpy as np
import pytest

from reefmap.report.cover import cells_per_class, fit_ground_frame, planar_cover, top_down_grid
from reefmap.taxonomy import default_taxonomy

TAX = default_taxonomy()
SAND, RUBBLE, FISH, BRANCHING = 5, 18, 9, 22


def test_cover_of_hand_made_label_map():
    grid = np.zeros((4, 5), dtype=np.int32)  # 20 cells, 4 of them empty
    grid[0, :] = SAND  # 5
    grid[1, :] = SAND  # 10 sand
    grid[2, :3] = BRANCHING  # 3 branching
    grid[2, 3:] = FISH  # 2 fish: excluded
    grid[3, :1] = RUBBLE  # 1 rubble
    rows = {r.class_id: r for r in planar_cover(cells_per_class(grid, TAX), TAX)}
    assert len(rows) == 39
    assert rows[SAND].percent == pytest.approx(100 * 10 / 14)
    assert rows[BRANCHING].percent == pytest.approx(100 * 3 / 14)
    assert rows[RUBBLE].percent == pytest.approx(100 * 1 / 14)
    assert rows[FISH].excluded and rows[FISH].percent is None and rows[FISH].cells == 2
    assert sum(r.percent for r in rows.values() if r.percent is not None) == pytest.approx(100.0)


def test_empty_map_has_zero_cover():
    rows = planar_cover(cells_per_class(np.zeros((3, 3), np.int32), TAX), TAX)
    assert all(r.percent in (0.0, None) for r in rows)


def test_top_down_grid_keeps_highest_point_per_cell():
    local = np.array([[0.05, 0.05, 0.0], [0.06, 0.04, 0.3], [0.17, 0.05, 0.1], [0.17, 0.17, 0.0]])
    labels = np.array([SAND, BRANCHING, RUBBLE, 0])
    colours = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]], dtype=np.uint8)
    grid = top_down_grid(local, labels, colours, cell_size=0.1, top_band=0.05, max_id=39)
    assert grid.labels.tolist() == [[BRANCHING, RUBBLE]]  # the unlabelled point adds no row
    assert grid.rgb[0, 0].tolist() == [2, 2, 2]
    # sand 0.3 below the branch top is hidden: each cell goes wholly to its top class
    assert grid.class_cells[BRANCHING] == 1.0 and grid.class_cells[RUBBLE] == 1.0 and grid.class_cells[SAND] == 0.0


def test_thin_object_takes_its_share_of_a_cell():
    # one cell: three sand points and one tape point 1 cm above them, within the 2 cm top band
    local = np.array([[0.01, 0.01, 0.0], [0.02, 0.03, 0.0], [0.03, 0.02, 0.0], [0.02, 0.02, 0.01]])
    labels = np.array([SAND, SAND, SAND, 15])
    grid = top_down_grid(local, labels, np.zeros((4, 3), np.uint8), cell_size=0.04, top_band=0.02, max_id=39)
    assert grid.labels.tolist() == [[15]]
    assert grid.class_cells[15] == 0.25 and grid.class_cells[SAND] == 0.75


def test_ground_frame_of_tilted_plane_points_to_cameras():
    rng = np.random.default_rng(0)
    uv = rng.uniform([-5, -1], [5, 1], size=(2000, 2))
    tilt = np.deg2rad(20)
    along = np.array([np.cos(tilt), 0.0, np.sin(tilt)])
    across = np.array([0.0, 1.0, 0.0])
    points = uv[:, :1] * along + uv[:, 1:] * across + [1.0, 2.0, 3.0]
    normal = np.cross(along, across)
    cameras = points[:10] + 1.5 * normal
    frame = fit_ground_frame(points, cameras)
    np.testing.assert_allclose(frame.axes[2], normal, atol=1e-6)
    assert abs(abs(frame.axes[0] @ along) - 1) < 1e-3  # main direction of a random sample
    np.testing.assert_allclose(frame.axes @ frame.axes.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(frame.axes) == pytest.approx(1.0)
    np.testing.assert_allclose(frame.to_local(points)[:, 2], 0.0, atol=1e-5)  # float32, as the cloud


def test_segments_split_the_area_along_the_transect():
    # a 4 m strip in 1 cm cells: sand for the first 3 m, rubble for the last metre, 2 m segments
    u = np.concatenate([[0.0], np.arange(0, 4.0, 0.01) + 0.005])  # cell centres, and a point fixing the origin at 0
    local = np.stack([u, np.zeros_like(u), np.zeros_like(u)], axis=1)
    labels = np.where(u < 3.0, SAND, RUBBLE)
    grid = top_down_grid(local, labels, np.zeros((len(u), 3), np.uint8), cell_size=0.01, top_band=0.01, max_id=39,
                         segment_length=2.0)
    assert grid.segment_cells.shape == (2, 40)
    assert grid.segment_cells[0, SAND] == 200 and grid.segment_cells[1, SAND] == 100
    assert grid.segment_cells[1, RUBBLE] == 100 and grid.segment_cells[0, RUBBLE] == 0
    second = {r.class_id: r.percent for r in planar_cover(grid.segment_cells[1], TAX)}
    assert second[SAND] == pytest.approx(50.0) and second[RUBBLE] == pytest.approx(50.0)
    assert np.array_equal(grid.class_cells, grid.segment_cells.sum(axis=0))


def test_ground_frame_points_the_way_the_camera_travelled():
    rng = np.random.default_rng(3)
    points = np.column_stack([rng.uniform(0, 10, 3000), rng.uniform(-1, 1, 3000), np.zeros(3000)])
    cameras = np.column_stack([np.linspace(10, 0, 20), np.zeros(20), np.full(20, 1.5)])  # travelling towards -x
    frame = fit_ground_frame(points, cameras)
    assert frame.axes[0][0] < -0.99
    assert np.linalg.det(frame.axes) == pytest.approx(1.0)


def test_the_grid_is_the_same_whatever_the_chunks_it_is_built_in():
    rng = np.random.default_rng(1)
    n = 2000
    local = np.stack([rng.uniform(0, 2, n), rng.uniform(-1, 1, n), np.round(rng.uniform(0, 0.1, n), 2)], 1)
    local = local.astype(np.float32)  # rounded heights: many cells have ties for their highest point
    labels = rng.choice([0, 5, 18, 22], n).astype(np.int32)
    colours = rng.integers(0, 255, (n, 3), dtype=np.uint8)
    confidence, factor = rng.uniform(0, 1, n).astype(np.float32), rng.uniform(1, 2, n)
    whole, chunked = (top_down_grid(local, labels, colours, 0.1, 0.02, 39, 0.5, confidence, factor, chunk_points=size)
                      for size in (n, 77))
    for name in ("labels", "rgb", "confidence", "height"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(chunked, name), err_msg=name)
    np.testing.assert_allclose(whole.segment_cells, chunked.segment_cells, rtol=1e-12)
    np.testing.assert_allclose(whole.segment_surface, chunked.segment_surface, rtol=1e-12)
    assert whole.origin_uv == chunked.origin_uv and whole.segment_cells.sum() > 0
