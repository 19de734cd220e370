"""The cover tables of one map for one taxonomy (classes, or groups of classes): planar, 3D surface, point count."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from reefmap.report.cover import CoverRow, TopDownGrid, planar_cover
from reefmap.report.uncertainty import PointEstimate, PointSample, point_cover
from reefmap.taxonomy import Taxonomy


@dataclass(frozen=True)
class CoverTables:
    """Per class of `taxonomy`: planar cover, 3D surface cover, per-segment planar and surface cover, point count."""

    taxonomy: Taxonomy
    planar: list[CoverRow]
    surface: list[CoverRow]
    segments: list[list[CoverRow]]
    segment_surface: list[list[CoverRow]]
    points: dict[int, PointEstimate]


def cover_tables(grid: TopDownGrid, sample: PointSample, taxonomy: Taxonomy, lookup: np.ndarray | None = None) -> CoverTables:
    """Cover of the grid's classes, or, with `lookup` (class id -> id in `taxonomy`), of their groups."""
    cells, surface = grid.segment_cells, grid.segment_surface
    if lookup is not None:
        cells, surface = _regroup(cells, lookup, taxonomy), _regroup(surface, lookup, taxonomy)
        sample = replace(sample, labels=lookup[sample.labels])
    return CoverTables(taxonomy, planar_cover(cells.sum(axis=0), taxonomy), planar_cover(surface.sum(axis=0), taxonomy),
                       [planar_cover(row, taxonomy) for row in cells], [planar_cover(row, taxonomy) for row in surface],
                       {p.class_id: p for p in point_cover(sample, taxonomy)})


def _regroup(per_class: np.ndarray, lookup: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """(S, max_class_id + 1) areas by class id -> (S, max_group_id + 1) areas by group id."""
    grouped = np.zeros((per_class.shape[0], int(taxonomy.ids.max()) + 1))
    for row_in, row_out in zip(per_class, grouped):
        row_out += np.bincount(lookup[: len(row_in)], weights=row_in, minlength=len(row_out))
    return grouped
