"""Structural complexity: rugosity (surface area over planar area) of the seabed's top surface."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reefmap.mapping.voxels import point_chunks
from reefmap.report.cover import COVER_CHUNK_POINTS


@dataclass(frozen=True)
class Rugosity:
    """Overall and per-segment rugosity; planar areas in map units² over the cells with a surface."""

    overall: float | None
    planar_area: float
    by_segment: list[float | None]


def height_grid(local: np.ndarray, cell_size: float) -> np.ndarray:
    """(H, W) mean height per cell of (N, 3) seabed-frame points (rows along v, columns along u); NaN where empty.

    The mean, unlike the maximum, does not turn the scatter of voxel positions into false relief.
    """
    low = local[:, :2].min(axis=0)
    h, w = _cell_of(local[:, :2].max(axis=0)[None], low, cell_size)[0] + 1
    total, count = np.zeros(h * w), np.zeros(h * w, np.int64)
    for c in point_chunks(len(local), COVER_CHUNK_POINTS):
        cell = _cell_of(local[c, :2], low, cell_size) @ np.array([w, 1])
        total += np.bincount(cell, weights=local[c, 2], minlength=h * w)
        count += np.bincount(cell, minlength=h * w)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan).reshape(h, w)


def _cell_of(uv: np.ndarray, low: np.ndarray, cell_size: float) -> np.ndarray:
    """(N, 2) int64 (row, column) of the height-grid cells of (N, 2) (u, v) points; the grid starts at `low` (u, v)."""
    return np.floor((uv[:, ::-1] - low[::-1]) / cell_size).astype(np.int64)


def block_surface_ratio(heights: np.ndarray, cell_size: float) -> np.ndarray:
    """(H-1, W-1) surface area over planar area of each 2x2 block of the height grid, triangulated into two
    triangles; NaN where a corner is empty."""
    z00, z01, z10, z11 = heights[:-1, :-1], heights[:-1, 1:], heights[1:, :-1], heights[1:, 1:]
    c = cell_size
    # triangle (00, 01, 11) spans (c, 0, dz1) x (c, c, dz2); triangle (00, 11, 10) spans (c, c, dz2) x (0, c, dz3)
    a = _triangle_area(np.array([c, 0.0]), np.array([c, c]), z01 - z00, z11 - z00)
    b = _triangle_area(np.array([c, c]), np.array([0.0, c]), z11 - z00, z10 - z00)
    return (a + b) / (c * c)


def rugosity(heights: np.ndarray, cell_size: float, segment_length: float) -> Rugosity:
    """Surface area of the triangulated height grid over the planar area of its filled blocks, overall and per
    segment of `segment_length` along the columns."""
    ratio = block_surface_ratio(heights, cell_size)
    filled = np.isfinite(ratio)
    surface = np.where(filled, ratio, 0.0)
    column_segment = np.floor(np.arange(surface.shape[1]) * cell_size / segment_length).astype(np.int64)
    n_segments = int(column_segment.max()) + 1 if surface.size else 0
    by_segment = []
    for s in range(n_segments):
        blocks = filled[:, column_segment == s]
        by_segment.append(float(surface[:, column_segment == s].sum() / blocks.sum()) if blocks.any() else None)
    planar = float(filled.sum() * cell_size ** 2)
    return Rugosity(float(surface.sum() / filled.sum()) if filled.any() else None, planar, by_segment)


def point_surface_factor(local: np.ndarray, heights: np.ndarray, cell_size: float) -> np.ndarray:
    """(N,) float32 surface over planar area around each seabed-frame point (the mean of the blocks touching its cell of
    the `height_grid` built from the same points); 1 where no block is filled."""
    ratio = block_surface_ratio(heights, cell_size)
    padded = np.pad(ratio, 1, constant_values=np.nan)  # cell (r, c) touches blocks (r-1..r, c-1..c)
    touching = np.stack([padded[:-1, :-1], padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]])
    count = np.isfinite(touching).sum(axis=0)
    per_cell = np.where(count > 0, np.nansum(touching, axis=0) / np.maximum(count, 1), 1.0)
    low = local[:, :2].min(axis=0)
    factor = np.empty(len(local), np.float32)
    for c in point_chunks(len(local), COVER_CHUNK_POINTS):
        row, col = _cell_of(local[c, :2], low, cell_size).T
        factor[c] = per_cell[row, col]
    return factor


def _triangle_area(edge1_xy: np.ndarray, edge2_xy: np.ndarray, dz1: np.ndarray, dz2: np.ndarray) -> np.ndarray:
    """Areas of triangles with edges (edge1_xy, dz1) and (edge2_xy, dz2), elementwise over the height differences."""
    cx = edge1_xy[1] * dz2 - dz1 * edge2_xy[1]
    cy = dz1 * edge2_xy[0] - edge1_xy[0] * dz2
    cz = edge1_xy[0] * edge2_xy[1] - edge1_xy[1] * edge2_xy[0]
    return 0.5 * np.sqrt(cx ** 2 + cy ** 2 + cz ** 2)
