"""Output files: cover CSV, PNG rasters, JSON, all staged and moved into place only when complete."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from reefmap.report.tables import CoverTables
from reefmap.report.uncertainty import PointSample, segment_percents
from reefmap.taxonomy import Taxonomy

COVER_COLUMNS = ("class_id", "class_name", "percent_cover", "cells", "planar_area", "excluded",
                 "surface_percent", "surface_area", "point_percent", "point_se", "point_ci_low", "point_ci_high",
                 "mean_confidence")
SEGMENT_COLUMNS = ("segment", "start", "end", "class_id", "class_name", "percent_cover", "planar_area",
                   "surface_area", "segment_rugosity")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def write_cover_csv(tables: CoverTables, path: Path, cell_area: float) -> None:
    """One row per class (or group): id, name, percent of the counted planar area (blank when excluded), cells,
    planar area, excluded flag, 3D surface percent and area, point-count percent with standard error and 95 %
    interval, and the mean vote confidence of the sampled points."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COVER_COLUMNS)
        for r, surface in zip(tables.planar, tables.surface):
            p = tables.points.get(r.class_id)
            point = ["", "", "", "", ""] if r.excluded or p is None else [
                _percent(p.percent), _percent(p.standard_error), _percent(p.ci_low), _percent(p.ci_high),
                "" if p.mean_confidence is None else f"{p.mean_confidence:.4f}"]
            writer.writerow([r.class_id, r.name, _percent(r.percent), f"{r.cells:.2f}", f"{r.cells * cell_area:.6g}",
                             int(r.excluded), _percent(surface.percent), f"{surface.cells * cell_area:.6g}", *point])


def write_segments_csv(tables: CoverTables, segment_length: float, path: Path, cell_area: float,
                       rugosity: list[float | None]) -> None:
    """Cover per segment along the transect, long format: one row per segment and counted class seen in the map,
    with its planar and 3D surface area, and the segment's rugosity (blank where it has no surface)."""
    seen = {r.class_id for rows in tables.segments for r in rows if r.cells > 0 and not r.excluded}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SEGMENT_COLUMNS)
        for k, (rows, surfaces) in enumerate(zip(tables.segments, tables.segment_surface)):
            for r, surface in zip(rows, surfaces):
                if r.class_id in seen:
                    ruggedness = rugosity[k] if k < len(rugosity) else None
                    writer.writerow([k, f"{k * segment_length:g}", f"{(k + 1) * segment_length:g}", r.class_id, r.name,
                                     _percent(r.percent), f"{r.cells * cell_area:.6g}",
                                     f"{surface.cells * cell_area:.6g}", _percent(ruggedness)])


def write_rgba_png(rgb: np.ndarray, valid: np.ndarray, path: Path) -> None:
    """(H, W, 3) uint8 RGB with (H, W) bool `valid` as alpha."""
    bgra = np.dstack([rgb[..., ::-1], np.where(valid, 255, 0).astype(np.uint8)])
    if not cv2.imwrite(str(path), bgra):
        raise OSError(f"cannot write PNG {path}")


def write_world_file(path: Path, cell_size: float, top_left: tuple[float, float]) -> None:
    """An ESRI world file (.pgw/.tfw) placing a raster in the seabed frame: x = u (along), y = v (across), pixel
    (0, 0)'s top-left corner at `top_left`, square `cell_size` pixels, north-up (y falls down the rows)."""
    x0, y0 = top_left
    values = (cell_size, 0.0, 0.0, -cell_size, x0 + cell_size / 2, y0 - cell_size / 2)
    path.write_text("".join(f"{v:.10f}\n" for v in values))


def write_height_tiff(height: np.ndarray, path: Path) -> None:
    """(H, W) float32 heights as a single-band float TIFF, NaN where nothing was mapped."""
    if not cv2.imwrite(str(path), height.astype(np.float32)):
        raise OSError(f"cannot write TIFF {path}")


def write_coralnet_points(sample: PointSample, taxonomy: Taxonomy, image_name: str, path: Path) -> None:
    """The sampled points on the ortho image in CoralNet's annotation import form: Name,Row,Column,Label."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("Name", "Row", "Column", "Label"))
        for r, c, label in zip(sample.rows, sample.cols, sample.labels):
            writer.writerow((image_name, int(r), int(c), taxonomy.by_id(int(label)).name))


def write_coralnet_percent_covers(sample: PointSample, taxonomy: Taxonomy, path: Path) -> None:
    """CoralNet's percent_covers.csv layout, one 'image' per transect segment, then the mean row."""
    segments, percents = segment_percents(sample, taxonomy)
    names = [c.name for c in taxonomy.classes]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Image ID", "Image name", "Annotation status", "Points", *names])
        for k, (segment, row) in enumerate(zip(segments, percents)):
            writer.writerow([k + 1, f"segment_{int(segment):04d}", "Confirmed", sample.points_per_segment,
                             *(f"{v:.3f}" for v in row)])
        if len(percents):
            writer.writerow(["", "ALL IMAGES", "", sample.points_per_segment * len(percents),
                             *(f"{v:.3f}" for v in percents.mean(axis=0))])
