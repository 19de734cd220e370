"""Top-down class map of the fused cloud and per-class planar cover."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reefmap.mapping.voxels import point_chunks
from reefmap.taxonomy import UNLABELLED, Taxonomy

COVER_CHUNK_POINTS = 1_000_000  # points rasterised at a time: the temporaries stay small however large the map


@dataclass(frozen=True)
class GroundFrame:
    """A seabed-aligned frame: `axes` rows are (along-transect u, across v, up n); `origin` in map units."""

    origin: np.ndarray  # (3,)
    axes: np.ndarray  # (3, 3) orthonormal rows, right-handed

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) map points -> (N, 3) float32 (u, v, height) in the seabed frame (float32 like the cloud: a long
        transect's millions of points are not doubled in size)."""
        local = np.empty((len(points), 3), np.float32)
        origin, axes = self.origin.astype(np.float32), self.axes.T.astype(np.float32)
        for c in point_chunks(len(points), COVER_CHUNK_POINTS):
            local[c] = (np.asarray(points[c], np.float32) - origin) @ axes
        return local


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
                  confidence: np.ndarray | None = None, surface_factor: np.ndarray | None = None,
                  chunk_points: int = COVER_CHUNK_POINTS) -> TopDownGrid:
    """Rasterise (N, 3) seabed-frame points as seen from above.

    Each cell shows its highest labelled point (the first of them in point order on a tie). For cover, the cell's
    area is shared among the labels of its points within `top_band` of that highest point (its visible top surface),
    so a tape or a branch narrower than a cell takes only its share of the cell. Areas are also split into segments
    of `segment_length` along u, counted from the start of the map (one segment when None).
    Each point's share times its `surface_factor` (surface area over planar area around it; 1 when None) is
    its 3D surface area. `confidence` (N,) is the points' label confidence (1 when None).
    The points are passed over in chunks of `chunk_points`, so no temporary is as long as the cloud.
    """
    chunks = point_chunks(len(labels), chunk_points)
    labelled = [labels[c] != UNLABELLED for c in chunks]
    if not any(k.any() for k in labelled):
        empty = np.zeros((1, max_id + 1))
        return TopDownGrid(np.zeros((0, 0), np.int32), np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.float32),
                           np.zeros((0, 0), np.float32), empty, empty, cell_size, (0.0, 0.0), segment_length or np.inf)
    seen = [(c, k) for c, k in zip(chunks, labelled) if k.any()]
    u0, u1 = min(local[c, 0][k].min() for c, k in seen), max(local[c, 0][k].max() for c, k in seen)
    v0, v1 = min(local[c, 1][k].min() for c, k in seen), max(local[c, 1][k].max() for c, k in seen)
    # floor is monotonic: the farthest points give the grid's size
    h, w = int(np.floor((v1 - v0) / cell_size)) + 1, int(np.floor((u1 - u0) / cell_size)) + 1

    def chunk_cells():
        for c, k in zip(chunks, labelled):
            col = np.floor((local[c, 0][k] - u0) / cell_size).astype(np.int64)
            row = np.floor((v1 - local[c, 1][k]) / cell_size).astype(np.int64)
            yield c, k, row * w + col, col

    top = np.full(h * w, -np.inf, local.dtype)
    for c, k, cell, _ in chunk_cells():
        np.maximum.at(top, cell, local[c, 2][k])
    first = np.full(h * w, len(labels), np.int32 if len(labels) < 2 ** 31 - 1 else np.int64)  # highest point
    for c, k, cell, _ in chunk_cells():
        highest = local[c, 2][k] == top[cell]
        np.minimum.at(first, cell[highest], np.arange(c.start, c.stop)[k][highest])
    filled = first < len(labels)
    label_grid = np.zeros(h * w, dtype=np.int32)
    rgb_grid = np.zeros((h * w, 3), dtype=np.uint8)
    confidence_grid = np.zeros(h * w, dtype=np.float32)
    label_grid[filled] = labels[first[filled]]
    rgb_grid[filled] = colours[first[filled]]
    confidence_grid[filled] = 1.0 if confidence is None else confidence[first[filled]]
    del first
    height = top.astype(np.float32)
    height[~filled] = np.nan
    band_floor = top
    band_floor -= np.asarray(top_band, local.dtype)  # in place: the top is not needed any more
    band_count = np.zeros(h * w, np.int32)
    for c, k, cell, _ in chunk_cells():
        np.add.at(band_count, cell[local[c, 2][k] >= band_floor[cell]], 1)
    segment_length = segment_length or np.inf
    n_segments = int(np.floor((w - 1) * cell_size / segment_length)) + 1 if np.isfinite(segment_length) else 1
    size = n_segments * (max_id + 1)
    planar, surface = np.zeros(size), np.zeros(size)
    for c, k, cell, col in chunk_cells():
        in_band = local[c, 2][k] >= band_floor[cell]
        share = 1.0 / band_count[cell[in_band]]
        segment = np.floor(col[in_band] * cell_size / segment_length).astype(np.int64) if np.isfinite(segment_length) \
            else np.zeros(int(in_band.sum()), np.int64)
        key = segment * (max_id + 1) + labels[c][k][in_band]
        planar += np.bincount(key, weights=share, minlength=size)
        factor = 1.0 if surface_factor is None else surface_factor[c][k][in_band]
        surface += np.bincount(key, weights=share * factor, minlength=size)
    return TopDownGrid(label_grid.reshape(h, w), rgb_grid.reshape(h, w, 3), confidence_grid.reshape(h, w),
                       height.reshape(h, w), planar.reshape(n_segments, max_id + 1),
                       surface.reshape(n_segments, max_id + 1), cell_size, (float(u0), float(v1)), segment_length)


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
