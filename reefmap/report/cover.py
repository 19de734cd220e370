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
        """(N, 3) map points -> (N, 3) float32 (u, v, height) in the seabed frame (float32 like the cloud: a long
        transect's millions of points are not doubled in size)."""
        return (np.asarray(points, np.float32) - self.origin.astype(np.float32)) @ self.axes.T.astype(np.float32)


def fit_ground_frame(points: np.ndarray, camera_centres: np.ndarray, up: np.ndarray | None = None) -> GroundFrame:
    """Seabed frame from PCA of the points (or a known `up` direction), oriented towards the cameras.

    u follows the points' main direction in the plane, pointing the way the camera travelled;
    n points from the seabed to the cameras.
    """
    origin = points.mean(axis=0, dtype=np.float64)
    _, _, vt = np.linalg.svd(points[:: max(1, len(points) // 200_000)] - origin, full_matrices=False)
    normal = vt[2] if up is None else up / np.linalg.norm(up)
    if np.dot(camera_centres.mean(axis=0) - origin, normal) < 0:
        normal = -normal
    u = vt[0] - np.dot(vt[0], normal) * normal
    if np.linalg.norm(u) < 1e-9:
        u = vt[1] - np.dot(vt[1], normal) * normal
    u /= np.linalg.norm(u)
    if np.dot(camera_centres[-1] - camera_centres[0], u) < 0:
        u = -u
    v = np.cross(normal, u)
    return GroundFrame(origin=origin, axes=np.stack([u, v, normal]))


@dataclass(frozen=True)
class TopDownGrid:
    """Top-down rasters over the seabed plane as seen from above: columns run along u (direction of travel to the
    right), rows run down the image towards smaller v (so the image is not mirrored)."""

    labels: np.ndarray  # (H, W) int32 class id of the highest point per cell; 0 = empty
    rgb: np.ndarray  # (H, W, 3) uint8 colour of that point
    confidence: np.ndarray  # (H, W) float32 vote confidence of that point's label; 0 where empty
    height: np.ndarray  # (H, W) float32 height of that point above the seabed plane; NaN where empty
    segment_cells: np.ndarray  # (S, max_id + 1) float64 area per class id in cells, per segment along u
    segment_surface: np.ndarray  # (S, max_id + 1) float64 3D surface area per class id in cells (cell_size² units)
    cell_size: float  # map units per cell
    origin_uv: tuple[float, float]  # (u, v) of the top-left corner of cell (0, 0); v falls by cell_size a row
    segment_length: float  # map units along u per segment

    @property
    def class_cells(self) -> np.ndarray:
        """(max_id + 1,) area per class id in cells over the whole map."""
        return self.segment_cells.sum(axis=0)

    @property
    def class_surface(self) -> np.ndarray:
        """(max_id + 1,) 3D surface area per class id in cells over the whole map."""
        return self.segment_surface.sum(axis=0)


def top_down_grid(local: np.ndarray, labels: np.ndarray, colours: np.ndarray, cell_size: float,
                  top_band: float, max_id: int, segment_length: float | None = None,
                  confidence: np.ndarray | None = None, surface_factor: np.ndarray | None = None) -> TopDownGrid:
    """Rasterise (N, 3) seabed-frame points as seen from above.

    Each cell shows its highest labelled point. For cover, the cell's area is shared among the labels of
    its points within `top_band` of that highest point (its visible top surface), so a tape or a branch
    narrower than a cell takes only its share of the cell. Areas are also split into segments of
    `segment_length` along u, counted from the start of the map (one segment when None).
    Each point's share times its `surface_factor` (surface area over planar area around it; 1 when None) is
    its 3D surface area. `confidence` (N,) is the points' label confidence (1 when None).
    """
    keep = labels != UNLABELLED
    confidence = np.ones(len(labels), np.float32) if confidence is None else confidence
    surface_factor = np.ones(len(labels)) if surface_factor is None else surface_factor
    if not keep.all():
        local, labels, colours = local[keep], labels[keep], colours[keep]
        confidence, surface_factor = confidence[keep], surface_factor[keep]
    if len(local) == 0:
        empty = np.zeros((1, max_id + 1))
        return TopDownGrid(np.zeros((0, 0), np.int32), np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.float32),
                           np.zeros((0, 0), np.float32), empty, empty, cell_size, (0.0, 0.0), segment_length or np.inf)
    u0, v1 = local[:, 0].min(), local[:, 1].max()
    col = np.floor((local[:, 0] - u0) / cell_size).astype(np.int64)
    row = np.floor((v1 - local[:, 1]) / cell_size).astype(np.int64)
    h, w = int(row.max()) + 1, int(col.max()) + 1
    cell = row * w + col
    del row
    order = np.lexsort((-local[:, 2], cell))  # per cell, its highest point first
    sorted_cells = cell[order]
    first = order[np.concatenate([[True], sorted_cells[1:] != sorted_cells[:-1]])]
    del order, sorted_cells
    label_grid = np.zeros(h * w, dtype=np.int32)
    rgb_grid = np.zeros((h * w, 3), dtype=np.uint8)
    confidence_grid = np.zeros(h * w, dtype=np.float32)
    label_grid[cell[first]] = labels[first]
    rgb_grid[cell[first]] = colours[first]
    confidence_grid[cell[first]] = confidence[first]
    top = np.full(h * w, -np.inf, np.float32)
    top[cell[first]] = local[first, 2]
    height = np.where(np.isfinite(top), top, np.nan).astype(np.float32)
    in_band = local[:, 2] >= top[cell] - np.float32(top_band)
    del top
    band_cells = cell[in_band]
    del cell
    band_count = np.bincount(band_cells, minlength=h * w)
    share = 1.0 / band_count[band_cells]
    del band_cells, band_count
    segment_length = segment_length or np.inf
    segment = np.floor(col[in_band] * cell_size / segment_length).astype(np.int64) if np.isfinite(segment_length) \
        else np.zeros(int(in_band.sum()), np.int64)
    n_segments = int(segment.max()) + 1
    key = segment * (max_id + 1) + labels[in_band]
    size = n_segments * (max_id + 1)
    planar = np.bincount(key, weights=share, minlength=size).reshape(n_segments, max_id + 1)
    surface = np.bincount(key, weights=share * surface_factor[in_band], minlength=size).reshape(n_segments, max_id + 1)
    return TopDownGrid(label_grid.reshape(h, w), rgb_grid.reshape(h, w, 3), confidence_grid.reshape(h, w),
                       height.reshape(h, w), planar, surface, cell_size, (float(u0), float(v1)), segment_length)


@dataclass(frozen=True)
class CoverRow:
    """Cover of one class: `percent` of the counted (non-excluded) mapped area; None when excluded."""

    class_id: int
    name: str
    cells: float
    percent: float | None
    excluded: bool


def cells_per_class(label_grid: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """(max_id + 1,) number of cells of each class id in a label raster."""
    return np.bincount(label_grid.ravel(), minlength=int(taxonomy.ids.max()) + 1).astype(np.float64)


def planar_cover(class_cells: np.ndarray, taxonomy: Taxonomy) -> list[CoverRow]:
    """Per-class share of the mapped area (`class_cells` by class id), leaving out `ignore_in_cover` classes."""
    excluded = set(taxonomy.ids_with_role("ignore_in_cover").tolist())
    counted_total = sum(float(class_cells[c.id]) for c in taxonomy.classes if c.id not in excluded)
    rows = []
    for c in taxonomy.classes:
        is_excluded = c.id in excluded
        percent = None
        if not is_excluded:
            percent = 100.0 * float(class_cells[c.id]) / counted_total if counted_total else 0.0
        rows.append(CoverRow(c.id, c.name, float(class_cells[c.id]), percent, is_excluded))
    return rows
