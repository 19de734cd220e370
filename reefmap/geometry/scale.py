"""Metric scale of a map from what the diver knows: the length of the filmed tape, or the camera's height above
the bottom. Both work in the seabed frame of the map, on the fused points and camera centres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_TAPE_POINTS = 50
TAPE_MIN_COVERAGE = 0.7  # a tape seen over less of the camera's travel along it is taken as only partly seen
TAPE_SPAN_PERCENTILES = (0.5, 99.5)
TAPE_BINS = 50
DENSE_SHARE = 0.25
SMOOTH_BINS = 5


@dataclass(frozen=True)
class ScaleEstimate:
    """Map units -> metres: `factor` multiplies map lengths; `uncertainty_percent` is one standard deviation."""

    factor: float
    source: str
    measured: float  # the length or height measured in the map, map units
    uncertainty_percent: float


def tape_span(local_uv: np.ndarray) -> tuple[float, float]:
    """Length of a tape from its (N, 2) points in the seabed plane, and its uncertainty.

    Points lie evenly along a tape, while pixels mislabelled as tape lie scattered beyond its ends. So the points
    are binned along their main direction (50 bins over the robust span, smoothed over 5 bins so that a stretch
    hidden by a coral does not cut the tape) and the tape is the longest run of bins holding at least a quarter of
    the typical bin's points, measured between its outermost points; one bin is the
    uncertainty of its two ends together.
    """
    centred = local_uv - local_uv.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    along = centred @ direction
    low, high = np.percentile(along, TAPE_SPAN_PERCENTILES)
    if high <= low:
        return 0.0, 0.0
    width = (high - low) / TAPE_BINS
    edges = np.arange(along.min(), along.max() + width, width)
    counts = np.convolve(np.histogram(along, bins=edges)[0], np.ones(SMOOTH_BINS) / SMOOTH_BINS, mode="same")
    dense = counts >= DENSE_SHARE * np.median(counts[counts > 0])
    best_start, best_length, start = 0, 0, None
    for k, is_dense in enumerate(np.append(dense, False)):
        if is_dense and start is None:
            start = k
        elif not is_dense and start is not None:
            if k - start > best_length:
                best_start, best_length = start, k - start
            start = None
    inside = along[(along >= edges[best_start]) & (along <= edges[best_start + best_length])]
    return float(inside.max() - inside.min()), float(width)


def tape_straightness(local_uv: np.ndarray) -> tuple[float, float] | None:
    """How straight a tape came out in the map: the RMS distance of its (N, 2) seabed-plane points from their
    fitted line, as a percentage of its span (`tape_span`), and that span; None with too few points.

    A tape pulled straight over the reef that bends in the map shows drift or bad depth (plan view: the tape
    drapes over the relief, so its heights are left out)."""
    if len(local_uv) < MIN_TAPE_POINTS:
        return None
    span, _ = tape_span(local_uv)
    if span <= 0:
        return None
    centred = local_uv - local_uv.mean(axis=0)
    across = np.linalg.svd(centred, full_matrices=False)[2][1]
    return float(100 * np.sqrt(np.mean((centred @ across) ** 2)) / span), span


def scale_from_tape(local: np.ndarray, is_tape: np.ndarray, tape_length_m: float, path_uv: np.ndarray,
                    voxel_size: float) -> tuple[ScaleEstimate, str | None]:
    """Scale that makes the tape seen in the map `tape_length_m` long; (estimate, warning or None).

    The map must show the whole tape from end to end. With too few tape points (a model that does not see the
    tape), or a tape spanning less than `TAPE_MIN_COVERAGE` of the camera's travel along the transect (a model that
    sees only part of it), the camera path along the seabed stands in for it, which assumes the diver swam the tape
    end to end.
    """
    path_span = float(np.ptp(path_uv[:, 0])) if len(path_uv) else 0.0
    points = local[is_tape, :2]
    seen = "not found in the map"
    if len(points) >= MIN_TAPE_POINTS:
        span, spread = tape_span(points)
        if span >= TAPE_MIN_COVERAGE * path_span and span > 0:
            uncertainty = 100 * np.hypot(spread, voxel_size) / span
            return ScaleEstimate(tape_length_m / span, "transect tape seen in the map (--tape-length-m)", span,
                                 float(uncertainty)), None
        if span > 0:
            seen = f"seen over only {100 * span / path_span:.0f} % of the camera's travel along it"
    if path_span <= 0:
        return ScaleEstimate(1.0, "none: the map shows no tape and the camera did not move", 0.0, 100.0), \
            "--tape-length-m: the map shows no tape and the camera did not move; the map stays in relative units"
    return ScaleEstimate(tape_length_m / path_span, f"camera path along the transect (tape {seen})", path_span,
                         10.0), (f"--tape-length-m: the tape was {seen}, so the camera path along the seabed was "
                                 "taken as the tape's length; check that the video runs from one end of the tape to "
                                 "the other, or use --mapping sfm, whose map shows the tape more completely")


def scale_from_altitude(camera_heights: np.ndarray, altitude_m: float) -> ScaleEstimate:
    """Scale that makes the median camera height above the seabed `altitude_m`; the heights' spread over the
    transect (a diver never holds one height) is the uncertainty."""
    median = float(np.median(camera_heights))
    spread = float(np.percentile(camera_heights, 75) - np.percentile(camera_heights, 25)) / 1.349
    return ScaleEstimate(altitude_m / median, "typical camera height above the seabed (--altitude-m)", median,
                         100 * spread / median)
