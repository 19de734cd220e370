import numpy as np
import pytest

from reefmap.report.uncertainty import point_cover, sample_points, segment_percents
from reefmap.taxonomy import default_taxonomy

TAX = default_taxonomy()
SAND, RUBBLE, FISH = 5, 18, 9


def test_uniform_segments_give_exact_percent_and_zero_error():
    grid = np.full((10, 100), SAND, np.int32)
    grid[:5] = RUBBLE  # every column is half sand, half rubble
    grid[0, :] = FISH  # fish points are dropped, not counted as a class
    est = {e.class_id: e for e in _cover(grid, points_per_segment=2000)}
    assert est[SAND].percent == pytest.approx(500 / 9, abs=2.0)
    assert est[RUBBLE].percent == pytest.approx(400 / 9, abs=2.0)
    assert est[FISH].percent == 0.0
    assert sum(e.percent for e in est.values()) == pytest.approx(100.0)
    assert est[SAND].ci_low <= est[SAND].percent <= est[SAND].ci_high


def test_patchy_transect_has_wider_interval_covering_the_truth():
    grid = np.full((10, 200), SAND, np.int32)
    grid[:, 40:80] = RUBBLE  # one rubble patch: 20 % of the transect
    est = {e.class_id: e for e in _cover(grid, points_per_segment=50)}
    assert est[RUBBLE].percent == pytest.approx(20.0, abs=3.0)
    assert est[RUBBLE].standard_error > 5.0
    assert est[RUBBLE].ci_low < 20.0 < est[RUBBLE].ci_high


def test_segments_and_determinism():
    grid = np.full((4, 50), SAND, np.int32)
    sample = sample_points(grid, TAX, 0.1, 1.0, 10, np.random.default_rng(1))
    assert len(sample.labels) == 50 and (grid[sample.rows, sample.cols] == sample.labels).all()
    segments, a = segment_percents(sample, TAX)
    assert segments.tolist() == [0, 1, 2, 3, 4] and np.allclose(a[:, SAND - 1], 100.0)
    assert _cover(grid) == _cover(grid)
    assert all(e.percent == 0.0 for e in _cover(np.zeros((3, 3), np.int32)))


def _cover(grid, points_per_segment=50):
    sample = sample_points(grid, TAX, 0.1, 1.0, points_per_segment, np.random.default_rng(0))
    return point_cover(sample, TAX)
