import numpy as np
import pytest

from reefmap.report.uncertainty import point_cover, sample_points, segment_percents, wilson_interval
from reefmap.taxonomy import default_taxonomy

TAX = default_taxonomy()
SAND, RUBBLE, FISH, URCHIN = 5, 18, 9, 35


def test_uniform_segments_give_exact_percent():
    grid = np.full((10, 100), SAND, np.int32)
    grid[:5] = RUBBLE  # every column is half sand, half rubble
    grid[0, :] = FISH  # fish points are dropped, not counted as a class
    est = {e.class_id: e for e in _cover(grid, points_per_segment=2000)}
    assert est[SAND].percent == pytest.approx(500 / 9, abs=2.0)
    assert est[RUBBLE].percent == pytest.approx(400 / 9, abs=2.0)
    assert est[FISH].percent == 0.0
    assert sum(e.percent for e in est.values()) == pytest.approx(100.0)
    assert est[SAND].ci_low <= est[SAND].percent <= est[SAND].ci_high


def test_pure_segments_are_measured_exactly_and_weighted_by_area():
    grid = np.full((10, 205), SAND, np.int32)
    grid[:, 40:80] = RUBBLE  # four whole 1 m segments of rubble
    grid[:, 200:] = URCHIN  # a last, half-length segment
    est = {e.class_id: e for e in _cover(grid, points_per_segment=50)}
    assert est[RUBBLE].percent == pytest.approx(100 * 40 / 205)
    assert est[URCHIN].percent == pytest.approx(100 * 5 / 205)  # not 1/21 of the segments
    assert est[RUBBLE].ci_low < est[RUBBLE].percent < est[RUBBLE].ci_high
    # the last segment has half the weight of the others: 21 segments of 50 points count as fewer
    assert est[RUBBLE].standard_error > np.sqrt(40 / 205 * 165 / 205 / (21 * 50)) * 100


def test_intervals_contain_the_true_cover_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    grid = np.full((20, 300), SAND, np.int32)
    grid[rng.random(grid.shape) < np.linspace(0.05, 0.6, 300)] = RUBBLE  # rubble gets denser along the tape
    grid[rng.random(grid.shape) < 0.01] = URCHIN  # a rare class
    truth = {c: 100 * (grid == c).mean() for c in (SAND, RUBBLE, URCHIN)}
    hits = {c: 0 for c in truth}
    trials = 300
    for seed in range(trials):
        sample = sample_points(grid, TAX, 0.1, 1.0, 30, seed)
        for e in point_cover(sample, TAX):
            if e.class_id in hits:
                hits[e.class_id] += e.ci_low <= truth[e.class_id] <= e.ci_high
    for class_id, count in hits.items():
        assert 0.90 <= count / trials <= 0.995, (class_id, count)


def test_uncertain_labels_widen_the_interval():
    rng = np.random.default_rng(3)
    grid = np.where(rng.random((10, 100)) < 0.3, RUBBLE, SAND).astype(np.int32)
    sure = _cover(grid, confidence=np.ones(grid.shape))
    unsure = _cover(grid, confidence=np.full(grid.shape, 0.6))
    r_sure, r_unsure = (next(e for e in est if e.class_id == RUBBLE) for est in (sure, unsure))
    assert r_unsure.percent == r_sure.percent
    assert r_unsure.standard_error > 1.1 * r_sure.standard_error
    assert r_unsure.ci_high - r_unsure.ci_low > r_sure.ci_high - r_sure.ci_low
    assert r_unsure.mean_confidence == pytest.approx(0.6) and r_sure.mean_confidence == 1.0


def test_wilson_interval_of_an_absent_class_is_not_empty():
    low, high = wilson_interval(np.array([0.0, 0.5]), np.array([100.0, 100.0]))
    assert low[0] == 0.0 and high[0] == pytest.approx(1.959964 ** 2 / (100 + 1.959964 ** 2))
    assert low[1] == pytest.approx(1 - high[1])


def test_segments_and_determinism():
    grid = np.full((4, 50), SAND, np.int32)
    sample = sample_points(grid, TAX, 0.1, 1.0, 10, 1)
    assert len(sample.labels) == 50 and (grid[sample.rows, sample.cols] == sample.labels).all()
    segments, a = segment_percents(sample, TAX)
    assert segments.tolist() == [0, 1, 2, 3, 4] and np.allclose(a[:, SAND - 1], 100.0)
    assert _cover(grid) == _cover(grid)
    assert all(e.percent == 0.0 for e in _cover(np.zeros((3, 3), np.int32)))


def test_points_stay_put_when_the_map_changes_a_little():
    rng = np.random.default_rng(5)
    grid = np.where(rng.random((30, 200)) < 0.4, RUBBLE, SAND).astype(np.int32)
    before = sample_points(grid, TAX, 0.1, 1.0, 25, seed=3, origin_uv=(-10.0, 1.5))
    relabelled = grid.copy()
    relabelled[rng.random(grid.shape) < 0.05] = URCHIN  # 5 % of the cells change class
    after = sample_points(relabelled, TAX, 0.1, 1.0, 25, seed=3, origin_uv=(-10.0, 1.5))
    assert (after.rows == before.rows).all() and (after.cols == before.cols).all()
    hole = grid.copy()
    hole[before.rows[:3], before.cols[:3]] = 0  # three sampled cells fall out of the map
    holed = sample_points(hole, TAX, 0.1, 1.0, 25, seed=3, origin_uv=(-10.0, 1.5))
    kept = set(zip(before.rows.tolist(), before.cols.tolist())) & set(zip(holed.rows.tolist(), holed.cols.tolist()))
    assert len(kept) == len(before.rows) - 3
    other_seed = sample_points(grid, TAX, 0.1, 1.0, 25, seed=4, origin_uv=(-10.0, 1.5))
    assert (other_seed.cols != before.cols).any()
    # the same seabed seen from a grid that starts 20 cells further along: the shared cells draw the same keys
    shifted = sample_points(grid[:, 20:], TAX, 0.1, 1.0, 25, seed=3, origin_uv=(-8.0, 1.5))
    moved = sample_points(grid, TAX, 0.1, 1.0, 25, seed=3, origin_uv=(-10.0, 1.5))
    assert set(zip(shifted.rows.tolist(), (shifted.cols + 20).tolist())) == set(
        zip(moved.rows[moved.cols >= 20].tolist(), moved.cols[moved.cols >= 20].tolist()))


def _cover(grid, points_per_segment=50, confidence=None):
    sample = sample_points(grid, TAX, 0.1, 1.0, points_per_segment, 0, confidence_grid=confidence)
    return point_cover(sample, TAX)
