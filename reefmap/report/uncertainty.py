"""Point-count cover with uncertainty: random points per transect segment on the top-down map, as ecologists count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reefmap.taxonomy import Taxonomy


@dataclass(frozen=True)
class PointEstimate:
    """Percent cover of one class from random points: mean over segments, its standard error and a bootstrap 95 % CI."""

    class_id: int
    percent: float
    standard_error: float
    ci_low: float
    ci_high: float


def segment_point_percents(label_grid: np.ndarray, taxonomy: Taxonomy, cell_size: float, segment_length: float,
                           points_per_segment: int, rng: np.random.Generator) -> np.ndarray:
    """(S, C) percent of points per class channel in each segment along the columns that holds counted cells.

    Points fall on random mapped cells of classes that count (excluded classes are not in the denominator).
    """
    counted = taxonomy.ids[~np.isin(taxonomy.ids, taxonomy.ids_with_role("ignore_in_cover"))]
    channel_of = np.full(int(taxonomy.ids.max()) + 1, -1)
    channel_of[taxonomy.ids] = np.arange(len(taxonomy))
    rows, cols = np.nonzero(np.isin(label_grid, counted))
    if len(rows) == 0:
        return np.zeros((0, len(taxonomy)))
    segment = np.floor(cols * cell_size / segment_length).astype(np.int64)
    percents = []
    for s in np.unique(segment):
        members = np.flatnonzero(segment == s)
        picks = members[rng.integers(0, len(members), points_per_segment)]
        channels = channel_of[label_grid[rows[picks], cols[picks]]]
        percents.append(100.0 * np.bincount(channels, minlength=len(taxonomy)) / points_per_segment)
    return np.array(percents)


def point_cover(label_grid: np.ndarray, taxonomy: Taxonomy, cell_size: float, segment_length: float = 1.0,
                points_per_segment: int = 50, bootstrap: int = 1000, seed: int = 0) -> list[PointEstimate]:
    """Per class: mean of the segments' point percentages, standard error over segments, bootstrap 95 % interval."""
    rng = np.random.default_rng(seed)
    percents = segment_point_percents(label_grid, taxonomy, cell_size, segment_length, points_per_segment, rng)
    n = len(percents)
    if n == 0:
        return [PointEstimate(int(c), 0.0, 0.0, 0.0, 0.0) for c in taxonomy.ids]
    mean = percents.mean(axis=0)
    se = percents.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(taxonomy))
    resampled = percents[rng.integers(0, n, (bootstrap, n))].mean(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
    return [PointEstimate(int(c), float(mean[k]), float(se[k]), float(low[k]), float(high[k]))
            for k, c in enumerate(taxonomy.ids)]
