import numpy as np
import pytest

from reefmap.report.rugosity import height_grid, rugosity


def test_flat_seabed_has_rugosity_one():
    heights = np.zeros((10, 20))
    r = rugosity(heights, 0.1, segment_length=1.0)
    assert r.overall == pytest.approx(1.0) and r.planar_area == pytest.approx(9 * 19 * 0.01)
    assert r.by_segment == pytest.approx([1.0, 1.0])


def test_inclined_plane_has_rugosity_of_its_slope():
    # z = 0.5 x: surface / planar = sqrt(1 + 0.25)
    x = np.arange(30) * 0.05
    heights = np.tile(0.5 * x, (12, 1))
    assert rugosity(heights, 0.05, 10.0).overall == pytest.approx(np.sqrt(1.25))
    # z = 0.5 y likewise
    assert rugosity(heights.T.copy(), 0.05, 10.0).overall == pytest.approx(np.sqrt(1.25))


def test_empty_cells_are_left_out_and_segments_split():
    heights = np.zeros((5, 40))
    heights[:, 20:] = np.tile(np.arange(20) * 0.1, (5, 1))  # second half: slope 1 at cell 0.1
    heights[2, 5] = np.nan
    r = rugosity(heights, 0.1, segment_length=2.0)
    assert r.by_segment[0] == pytest.approx(1.0)
    assert r.by_segment[1] == pytest.approx(np.sqrt(2.0))
    assert r.planar_area == pytest.approx((4 * 39 - 4) * 0.01)


def test_height_grid_averages_each_cell():
    local = np.array([[0.01, 0.01, 0.2], [0.02, 0.02, 0.5], [0.15, 0.01, 0.1], [0.01, 0.25, 0.0]])
    grid = height_grid(local, 0.1)
    assert grid.shape == (3, 2) and grid[0, 0] == pytest.approx(0.35) and grid[0, 1] == pytest.approx(0.1)
    assert np.isnan(grid[1, 0]) and grid[2, 0] == 0.0
