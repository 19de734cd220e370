"""Exact ground truth from the scene mesh: top-down class map over the filmed strip, cover, areas, rugosity."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reefmap.runtime.o3d import open3d
from reefmap.synthetic.scene import Scene
from reefmap.taxonomy import Taxonomy

MIN_UPNESS = 0.1  # steepest surface counted in surface area: 1 / 0.1 = 10 x its footprint


@dataclass
class TopDownTruth:
    """Orthographic view from above: per cell the class and slope of the highest surface, and what was filmed."""

    labels: np.ndarray  # (H, W) int32 class id of the top surface
    upness: np.ndarray  # (H, W) float32 |normal z| of the top surface
    seen: np.ndarray  # (H, W) bool cells hit by at least one camera ray (closed over small gaps)
    cell_m: float
    origin_xy: tuple[float, float]



def cells_inside(xy: np.ndarray, origin_xy, cell_m: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the (N, 2) points that fall inside a top-down grid of `shape` cells from `origin_xy`."""
    col = np.floor((xy[:, 0] - origin_xy[0]) / cell_m).astype(np.int64)
    row = np.floor((xy[:, 1] - origin_xy[1]) / cell_m).astype(np.int64)
    inside = (row >= 0) & (row < shape[0]) & (col >= 0) & (col < shape[1])
    return row[inside], col[inside]


def top_down_truth(scene: Scene, cloud_classes: np.ndarray, x_range, y_range, cell_m: float) -> TopDownTruth:
    """Cast one vertical ray per cell onto the scene without classes dropped from maps (e.g. fish)."""
    o3d = open3d()
    keep = np.isin(scene.labels, cloud_classes)
    raycaster = o3d.t.geometry.RaycastingScene()
    raycaster.add_triangles(o3d.core.Tensor(scene.vertices.astype(np.float32)),
                            o3d.core.Tensor(scene.triangles[keep].astype(np.uint32)))
    labels_kept = scene.labels[keep]
    xs = np.arange(x_range[0], x_range[1], cell_m) + cell_m / 2
    ys = np.arange(y_range[0], y_range[1], cell_m) + cell_m / 2
    gx, gy = np.meshgrid(xs, ys)
    top = float(scene.vertices[:, 2].max()) + 1.0
    rays = np.zeros((gx.size, 6), np.float32)
    rays[:, 0], rays[:, 1], rays[:, 2], rays[:, 5] = gx.ravel(), gy.ravel(), top, -1.0
    hits = raycaster.cast_rays(o3d.core.Tensor(rays))
    hit = np.isfinite(hits["t_hit"].numpy())
    ids = hits["primitive_ids"].numpy()
    labels = np.where(hit, labels_kept[np.where(hit, ids, 0)], 0).reshape(gx.shape).astype(np.int32)
    upness = np.abs(hits["primitive_normals"].numpy()[:, 2]).reshape(gx.shape).astype(np.float32)
    return TopDownTruth(labels, upness, np.zeros(gx.shape, bool), cell_m, (x_range[0], y_range[0]))


def mark_seen(truth: TopDownTruth, points_xy: np.ndarray) -> None:
    """Mark the cells containing these filmed seabed points."""
    row, col = cells_inside(points_xy, truth.origin_xy, truth.cell_m, truth.seen.shape)
    truth.seen[row, col] = True


def close_seen(truth: TopDownTruth) -> None:
    """Fill pinholes between neighbouring filmed rays (the ray spacing on the seabed exceeds a cell far away)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    truth.seen = cv2.morphologyEx(truth.seen.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)


@dataclass(frozen=True)
class TrueCover:
    """True cover of one class over the filmed cells: planar and 3D surface cells, percents of the counted cells
    (None for classes the taxonomy leaves out of cover)."""

    class_id: int
    name: str
    excluded: bool
    cells: float
    percent: float | None
    surface_cells: float
    surface_percent: float | None


def true_cover(truth: TopDownTruth, taxonomy: Taxonomy) -> list[TrueCover]:
    """Per class: its filmed cells and their share of all filmed cells of counted classes, planar and 3D surface
    (each cell weighted by 1 / the seabed's upness there). Computed here from the true raster, sharing no code with
    the cover measurement of report/ that `reefmap evaluate` judges against it."""
    excluded = set(taxonomy.ids_with_role("ignore_in_cover").tolist())
    labels = np.where(truth.seen, truth.labels, 0)
    weight = 1.0 / np.maximum(truth.upness, MIN_UPNESS)
    cells = {c.id: float((labels == c.id).sum()) for c in taxonomy.classes}
    surface = {c.id: float(weight[labels == c.id].sum()) for c in taxonomy.classes}
    counted = sum(cells[k] for k in cells if k not in excluded)
    counted_surface = sum(surface[k] for k in surface if k not in excluded)

    def share(value: float, total: float, class_id: int) -> float | None:
        return None if class_id in excluded else (100.0 * value / total if total else 0.0)

    return [TrueCover(c.id, c.name, c.id in excluded, cells[c.id], share(cells[c.id], counted, c.id),
                      surface[c.id], share(surface[c.id], counted_surface, c.id)) for c in taxonomy.classes]


TRUE_COVER_COLUMNS = ("class_id", "class_name", "percent_cover", "cells", "planar_area", "excluded",
                      "surface_percent", "surface_area")


def write_true_cover_csv(rows: list[TrueCover], cell_m: float, path) -> None:
    """cover_true.csv: the columns of a run's cover.csv that truth has (no point count), areas in m²."""
    import csv

    def percent(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TRUE_COVER_COLUMNS)
        for r in rows:
            writer.writerow([r.class_id, r.name, percent(r.percent), f"{r.cells:.2f}", f"{r.cells * cell_m ** 2:.6g}",
                             int(r.excluded), percent(r.surface_percent), f"{r.surface_cells * cell_m ** 2:.6g}"])


def truth_summary(truth: TopDownTruth, taxonomy: Taxonomy) -> dict:
    """True planar cover, planar and 3D surface area per class, and rugosity over the filmed cells."""
    cover = true_cover(truth, taxonomy)
    cell_area = truth.cell_m ** 2
    planar_area = sum(r.cells for r in cover) * cell_area
    surface_area = sum(r.surface_cells for r in cover) * cell_area
    rows = [{"class_id": r.class_id, "class_name": r.name, "percent_cover": r.percent, "cells": r.cells,
             "excluded": r.excluded, "planar_area_m2": r.cells * cell_area, "surface_percent": r.surface_percent,
             "surface_area_m2": r.surface_cells * cell_area} for r in cover]
    return {
        "cell_m": truth.cell_m,
        "planar_area_m2": planar_area,
        "surface_area_m2": surface_area,
        "rugosity": surface_area / planar_area if planar_area else None,
        "cover": rows,
    }
