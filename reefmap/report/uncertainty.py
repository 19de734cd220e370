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


@dataclass(frozen=True)
class PointSample:
    """Random points on the top-down map: their segment along the transect, cell (row, column) and class id."""

    segment: np.ndarray  # (P,) int64 segment index along the columns
    rows: np.ndarray  # (P,) int64
    cols: np.ndarray  # (P,) int64
    labels: np.ndarray  # (P,) int32 class id
    points_per_segment: int


def sample_points(label_grid: np.ndarray, taxonomy: Taxonomy, cell_size: float, segment_length: float,
                  points_per_segment: int, rng: np.random.Generator) -> PointSample:
    """`points_per_segment` random mapped cells (with replacement) per segment of `segment_length` along the
    columns, among cells of classes that count: excluded classes are not in the denominator, as in a point count."""
    counted = taxonomy.ids[~np.isin(taxonomy.ids, taxonomy.ids_with_role("ignore_in_cover"))]
    rows, cols = np.nonzero(np.isin(label_grid, counted))
    segment = np.floor(cols * cell_size / segment_length).astype(np.int64)
    picks = [members[rng.integers(0, len(members), points_per_segment)]
             for members in (np.flatnonzero(segment == s) for s in np.unique(segment))]
    chosen = np.concatenate(picks) if picks else np.zeros(0, np.int64)
    return PointSample(segment[chosen], rows[chosen], cols[chosen], label_grid[rows[chosen], cols[chosen]],
                       points_per_segment)


def segment_percents(sample: PointSample, taxonomy: Taxonomy) -> tuple[np.ndarray, np.ndarray]:
    """(S,) segment indices and (S, C) percent of each segment's points per class channel."""
    channel_of = np.full(int(taxonomy.ids.max()) + 1, -1)
    channel_of[taxonomy.ids] = np.arange(len(taxonomy))
    segments = np.unique(sample.segment)
    percents = [100.0 * np.bincount(channel_of[sample.labels[sample.segment == s]], minlength=len(taxonomy))
                / sample.points_per_segment for s in segments]
    return segments, np.array(percents).reshape(len(segments), len(taxonomy))


def point_cover(sample: PointSample, taxonomy: Taxonomy, bootstrap: int = 1000, seed: int = 0) -> list[PointEstimate]:
    """Per class: mean of the segments' point percentages, standard error over segments, bootstrap 95 % interval."""
    rng = np.random.default_rng(seed)
    _, percents = segment_percents(sample, taxonomy)
    n = len(percents)
    if n == 0:
        return [PointEstimate(int(c), 0.0, 0.0, 0.0, 0.0) for c in taxonomy.ids]
    mean = percents.mean(axis=0)
    se = percents.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(taxonomy))
    resampled = percents[rng.integers(0, n, (bootstrap, n))].mean(axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
    return [PointEstimate(int(c), float(mean[k]), float(se[k]), float(low[k]), float(high[k]))
            for k, c in enumerate(taxonomy.ids)]
