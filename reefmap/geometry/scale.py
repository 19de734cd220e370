"""Metric scale of a map from what the diver knows: the length of the filmed tape, or the camera's height above
the bottom. Both work in the seabed frame of the map, on the fused points and camera centres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_TAPE_POINTS = 50
TAPE_SPAN_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class ScaleEstimate:
    """Map units -> metres: `factor` multiplies map lengths; `uncertainty_percent` is one standard deviation."""

    factor: float
    source: str
    measured: float  # the length or height measured in the map, map units
    uncertainty_percent: float


def tape_span(local_uv: np.ndarray) -> tuple[float, float]:
    """Length of a tape from its (N, 2) points in the seabed plane, and how far that length moves with the choice
    of ends (its spread). Points lie evenly along a tape, so the span between robust end percentiles, divided by the
    share of points between them, is its length; stray points off its ends show up as spread."""
    centred = local_uv - local_uv.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    along = centred @ direction

    def length(low: float, high: float) -> float:
        a, b = np.percentile(along, (low, high))
        return float(b - a) * 100 / (high - low)

    robust = length(*TAPE_SPAN_PERCENTILES)
    return robust, max(abs(length(0.0, 100.0) - robust), abs(length(2.0, 98.0) - robust))


def scale_from_tape(local: np.ndarray, is_tape: np.ndarray, tape_length_m: float, path_uv: np.ndarray,
                    voxel_size: float) -> tuple[ScaleEstimate, str | None]:
    """Scale that makes the tape seen in the map `tape_length_m` long; (estimate, warning or None).

    The map must show the whole tape from end to end. With too few tape points (a model that does not see the
    tape) the camera path along the seabed stands in for it, which assumes the diver swam the tape end to end.
    """
    points = local[is_tape, :2]
    if len(points) >= MIN_TAPE_POINTS:
        span, spread = tape_span(points)
        if span > 0:
            uncertainty = 100 * np.hypot(spread, voxel_size) / span
            return ScaleEstimate(tape_length_m / span, "transect tape seen in the map (--tape-length-m)", span,
                                 float(uncertainty)), None
    span = float(np.ptp(path_uv[:, 0])) if len(path_uv) else 0.0
    if span <= 0:
        return ScaleEstimate(1.0, "none: the map shows no tape and the camera did not move", 0.0, 100.0), \
            "--tape-length-m: the map shows no tape and the camera did not move; the map stays in relative units"
    return ScaleEstimate(tape_length_m / span, "camera path along the transect (tape not found in the map)", span,
                         10.0), ("--tape-length-m: the tape was not found in the map, so the camera path along the "
                                 "seabed was taken as the tape's length; check that the video runs from one end of "
                                 "the tape to the other")


def scale_from_altitude(camera_heights: np.ndarray, altitude_m: float) -> ScaleEstimate:
    """Scale that makes the median camera height above the seabed `altitude_m`; the heights' spread over the
    transect (a diver never holds one height) is the uncertainty."""
    median = float(np.median(camera_heights))
    spread = float(np.percentile(camera_heights, 75) - np.percentile(camera_heights, 25)) / 1.349
    return ScaleEstimate(altitude_m / median, "typical camera height above the seabed (--altitude-m)", median,
                         100 * spread / median)
