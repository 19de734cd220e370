"""Top-down class map of the fused cloud and per-class planar cover."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reefmap.taxonomy import UNLABELLED, Taxonomy


@dataclass(frozen=True)
class GroundFrame:
    """A seabed-aligned frame: `axes` rows are (along-transect u, across v, up n); `origin` in map units."""

    origin: np.ndarray  # (3,)
    axes: np.ndarray  # (3, 3) orthonormal rows, right-handed

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) map points -> (N, 3) (u, v, height) in the seabed frame."""
        return (points - self.origin) @ self.axes.T


def fit_ground_frame(points: np.ndarray, camera_centres: np.ndarray, up: np.ndarray | None = None) -> GroundFrame:
    """Seabed frame from PCA of the points (or a known `up` direction), oriented towards the cameras.

    u follows the points' main direction in the plane, n points from the seabed to the cameras.
    """
    origin = points.mean(axis=0)
    centred = points - origin
    _, _, vt = np.linalg.svd(centred[:: max(1, len(points) // 200_000)], full_matrices=False)
    normal = vt[2] if up is None else up / np.linalg.norm(up)
    if np.dot(camera_centres.mean(axis=0) - origin, normal) < 0:
        normal = -normal
    u = vt[0] - np.dot(vt[0], normal) * normal
    if np.linalg.norm(u) < 1e-9:
        u = vt[1] - np.dot(vt[1], normal) * normal
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    return GroundFrame(origin=origin, axes=np.stack([u, v, normal]))


@dataclass(frozen=True)
class TopDownGrid:
    """Top-down rasters over the seabed plane: row = v (across), column = u (along)."""

    labels: np.ndarray  # (H, W) int32 class id of the highest point per cell; 0 = empty
    rgb: np.ndarray  # (H, W, 3) uint8 colour of that point
    cell_size: float  # map units per cell
    origin_uv: tuple[float, float]  # (u, v) of the corner of cell (0, 0)


def top_down_grid(local: np.ndarray, labels: np.ndarray, colours: np.ndarray, cell_size: float) -> TopDownGrid:
    """Rasterise (N, 3) seabed-frame points: each cell shows its highest labelled point, as seen from above."""
    keep = labels != UNLABELLED
    local, labels, colours = local[keep], labels[keep], colours[keep]
    if len(local) == 0:
        return TopDownGrid(np.zeros((0, 0), np.int32), np.zeros((0, 0, 3), np.uint8), cell_size, (0.0, 0.0))
    u0, v0 = local[:, 0].min(), local[:, 1].min()
    col = np.floor((local[:, 0] - u0) / cell_size).astype(np.int64)
    row = np.floor((local[:, 1] - v0) / cell_size).astype(np.int64)
    h, w = int(row.max()) + 1, int(col.max()) + 1
    cell = row * w + col
    order = np.lexsort((-local[:, 2], cell))
    first = order[np.unique(cell[order], return_index=True)[1]]
    label_grid = np.zeros(h * w, dtype=np.int32)
    rgb_grid = np.zeros((h * w, 3), dtype=np.uint8)
    label_grid[cell[first]] = labels[first]
    rgb_grid[cell[first]] = colours[first]
    return TopDownGrid(label_grid.reshape(h, w), rgb_grid.reshape(h, w, 3), cell_size, (float(u0), float(v0)))


@dataclass(frozen=True)
class CoverRow:
    """Cover of one class: `percent` of the counted (non-excluded) mapped area; None when excluded."""

    class_id: int
    name: str
    cells: int
    percent: float | None
    excluded: bool


def planar_cover(label_grid: np.ndarray, taxonomy: Taxonomy) -> list[CoverRow]:
    """Per-class share of mapped cells, leaving out classes with the `ignore_in_cover` role."""
    counts = np.bincount(label_grid.ravel(), minlength=int(taxonomy.ids.max()) + 1)
    excluded = set(taxonomy.ids_with_role("ignore_in_cover").tolist())
    counted_total = sum(int(counts[c.id]) for c in taxonomy.classes if c.id not in excluded)
    rows = []
    for c in taxonomy.classes:
        is_excluded = c.id in excluded
        percent = None
        if not is_excluded:
            percent = 100.0 * counts[c.id] / counted_total if counted_total else 0.0
        rows.append(CoverRow(c.id, c.name, int(counts[c.id]), percent, is_excluded))
    return rows
