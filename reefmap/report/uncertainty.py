"""Point-count cover with uncertainty: random points per transect segment on the top-down map, as ecologists count.
The points are fixed by a seed and their place on the seabed, not by the map's content.

The segments are strata that together make up the map, each sampled at random, so the transect's cover is the
segments' point percentages weighted by their mapped area (a stratified estimate). Its variance is taken as that
of simple random sampling of the same number of points, shrunk by Kish's design effect of the unequal segment
weights: conservative (stratification only lowers the variance), and unlike the per-segment variance it does not
vanish for a patchy class that a segment's points happened to miss. The label's own uncertainty (one minus its
vote confidence) is added point by point. The 95 % interval is the Wilson score interval at the effective
number of points (with the exact Poisson lower bound for one or two hits, where Wilson's is too high), which stays
sensible for rare and absent classes where a normal or bootstrap interval collapses to a single value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reefmap.taxonomy import Taxonomy

Z95 = 1.959964


@dataclass(frozen=True)
class PointEstimate:
    """Percent cover of one class from random points, its standard error, 95 % interval and mean label confidence."""

    class_id: int
    percent: float
    standard_error: float
    ci_low: float
    ci_high: float
    mean_confidence: float | None = None


@dataclass(frozen=True)
class PointSample:
    """Random points on the top-down map: segment along the transect, cell (row, column), class id, vote confidence;
    `segment_weights` holds each segment's share of the counted map area (indexed by segment number)."""

    segment: np.ndarray  # (P,) int64 segment index along the columns
    rows: np.ndarray  # (P,) int64
    cols: np.ndarray  # (P,) int64
    labels: np.ndarray  # (P,) int32 class id
    confidence: np.ndarray  # (P,) float64 share of the voxel's votes won by its label, 0..1
    segment_weights: np.ndarray  # (S,) float64, sums to 1
    points_per_segment: int


def sample_points(label_grid: np.ndarray, taxonomy: Taxonomy, cell_size: float, segment_length: float,
                  points_per_segment: int, seed: int, origin_uv: tuple[float, float] = (0.0, 0.0),
                  confidence_grid: np.ndarray | None = None) -> PointSample:
    """`points_per_segment` random mapped cells per segment of `segment_length` along the columns, among cells of
    classes that count: excluded classes are not in the denominator, as in a point count.

    Each cell draws a fixed random key from `seed` and its place on the seabed (its centre's lattice cell in the
    ground frame, `origin_uv` being the (u, v) of the grid's top-left corner); a segment's points are its counted
    cells with the smallest keys (each cell taken up to as often as a segment needs when it has fewer cells than
    points). So the points depend on the seed and the seabed frame only: relabelling cells moves no point, and a
    cell entering or leaving the map moves at most its own points. Without `confidence_grid` every label is
    taken as certain."""
    counted = taxonomy.ids[~np.isin(taxonomy.ids, taxonomy.ids_with_role("ignore_in_cover"))]
    rows, cols = np.nonzero(np.isin(label_grid, counted))
    segment = np.floor(cols * cell_size / segment_length).astype(np.int64)
    n_segments = int(segment.max()) + 1 if len(segment) else 0
    sizes = np.bincount(segment, minlength=n_segments).astype(np.float64)
    u_cell = np.floor(origin_uv[0] / cell_size + cols + 0.5).astype(np.int64)
    v_cell = np.floor(origin_uv[1] / cell_size - rows - 0.5).astype(np.int64)
    picks = []
    for s in np.flatnonzero(sizes):
        members = np.flatnonzero(segment == s)
        repeats = -(-points_per_segment // len(members))
        candidates = np.repeat(members, repeats)
        keys = cell_keys(seed, u_cell[candidates], v_cell[candidates], np.tile(np.arange(repeats), len(members)))
        picks.append(np.sort(candidates[np.argsort(keys, kind="stable")[:points_per_segment]]))
    chosen = np.concatenate(picks) if picks else np.zeros(0, np.int64)
    r, c = rows[chosen], cols[chosen]
    confidence = np.ones(len(chosen)) if confidence_grid is None else confidence_grid[r, c].astype(np.float64)
    return PointSample(segment[chosen], r, c, label_grid[r, c], confidence, sizes / max(sizes.sum(), 1.0),
                       points_per_segment)


def cell_keys(seed: int, u_cell: np.ndarray, v_cell: np.ndarray, repeat: np.ndarray) -> np.ndarray:
    """Uniform pseudo-random uint64 keys of (seed, lattice cell, repeat), the same wherever they are computed
    (the SplitMix64 finaliser of a mix of the four integers)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
             + u_cell.astype(np.int64).view(np.uint64) * np.uint64(0xD1B54A32D192ED03)
             + v_cell.astype(np.int64).view(np.uint64) * np.uint64(0xAEF17502108EF2D9)
             + repeat.astype(np.uint64) * np.uint64(0x94D049BB133111EB))
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _channels(taxonomy: Taxonomy) -> np.ndarray:
    channel_of = np.full(int(taxonomy.ids.max()) + 1, -1)
    channel_of[taxonomy.ids] = np.arange(len(taxonomy))
    return channel_of


def segment_percents(sample: PointSample, taxonomy: Taxonomy) -> tuple[np.ndarray, np.ndarray]:
    """(S,) sampled segment indices and (S, C) percent of each segment's points per class channel."""
    channel_of = _channels(taxonomy)
    segments = np.unique(sample.segment)
    percents = [100.0 * np.bincount(channel_of[sample.labels[sample.segment == s]], minlength=len(taxonomy))
                / sample.points_per_segment for s in segments]
    return segments, np.array(percents).reshape(len(segments), len(taxonomy))


def wilson_interval(p: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for proportions `p` observed on `n` (effective) points."""
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def point_cover(sample: PointSample, taxonomy: Taxonomy) -> list[PointEstimate]:
    """Per class: stratified percent cover, its standard error and 95 % Wilson interval at the effective sample size,
    and the mean vote confidence of its points."""
    n_classes = len(taxonomy)
    if len(sample.labels) == 0:
        return [PointEstimate(int(c), 0.0, 0.0, 0.0, 0.0) for c in taxonomy.ids]
    channel = _channels(taxonomy)[sample.labels]
    n = sample.points_per_segment
    key = sample.segment * n_classes + channel
    size = len(sample.segment_weights) * n_classes
    share = (np.bincount(key, minlength=size) / n).reshape(-1, n_classes)  # (S, C) per segment
    label_noise = (np.bincount(key, weights=sample.confidence * (1 - sample.confidence), minlength=size)
                   / n ** 2).reshape(-1, n_classes)
    weights = sample.segment_weights[:, None]
    p = (weights * share).sum(axis=0)
    sampled = sample.segment_weights[np.unique(sample.segment)]
    design_n = len(sample.labels) / (len(sampled) * np.sum(sampled ** 2) / np.sum(sampled) ** 2)
    variance = p * (1 - p) / design_n + (weights ** 2 * label_noise).sum(axis=0)
    effective_n = np.where(variance > 0, p * (1 - p) / np.maximum(variance, 1e-300), design_n)
    effective_n = np.clip(effective_n, 1.0, design_n)
    low, high = wilson_interval(p, effective_n)
    hits = p * effective_n
    few = (hits > 0.5) & (hits < 2.5)  # exact 95 % Poisson lower bound for 1 or 2 hits: 0.0253 and 0.2422 over n
    low = np.where(few, np.minimum(low, np.where(hits < 1.5, 0.0253, 0.2422) / effective_n), low)
    confidence_sum = np.bincount(channel, weights=sample.confidence, minlength=n_classes)
    count = np.bincount(channel, minlength=n_classes)
    return [PointEstimate(int(c), 100 * float(p[k]), 100 * float(np.sqrt(variance[k])), 100 * float(low[k]),
                          100 * float(high[k]), float(confidence_sum[k] / count[k]) if count[k] else None)
            for k, c in enumerate(taxonomy.ids)]
