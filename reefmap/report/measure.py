"""Measuring a fused map: its metric scale from the tape or the camera's altitude, then cover (planar, 3D surface,
point count) of classes and groups, rugosity and the tape's straightness, all in the seabed frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reefmap.geometry.scale import ScaleEstimate, scale_from_altitude, scale_from_tape, tape_straightness
from reefmap.mapping.voxels import LabelledCloud
from reefmap.report.cover import CoverRow, GroundFrame, TopDownGrid, fit_ground_frame, top_down_grid
from reefmap.report.groups import ClassGroups
from reefmap.report.rugosity import Rugosity, height_grid, point_surface_factor, rugosity
from reefmap.report.tables import CoverTables, cover_tables
from reefmap.report.uncertainty import PointSample, sample_points
from reefmap.runtime.notices import warn
from reefmap.taxonomy import Taxonomy

LEVELLED_BY_PLANE = "seabed plane (PCA of the map)"
LEVELLED_BY_GRAVITY = "gravity from the video's GoPro telemetry (GRAV)"


@dataclass(frozen=True)
class CoverSettings:
    """How cover is measured; lengths in map units of the fusion (before any metric rescaling)."""

    voxel_size: float = 0.02  # voxel edge of the fused map
    cell_size: float | None = None  # top-down raster cell (None: the voxel size)
    segment_length: float = 5.0  # along-transect segment of cover_segments.csv
    point_segment_length: float = 1.0  # stratum length of the point count
    points_per_segment: int = 50  # random points per stratum


@dataclass
class MeasuredCover:
    """Cover of a map: the top-down grid, its point sample, cover tables of classes and of class groups, rugosity."""

    ground: GroundFrame
    grid: TopDownGrid
    sample: PointSample
    classes: CoverTables
    groups: CoverTables
    rugosity: Rugosity
    rugosity_cell: float
    levelled_by: str = LEVELLED_BY_PLANE
    scale: ScaleEstimate | None = None

    @property
    def cover(self) -> list[CoverRow]:
        return self.classes.planar


def estimate_scale(cloud: LabelledCloud, camera_centres: np.ndarray, taxonomy: Taxonomy, voxel_size: float,
                   tape_length_m: float | None = None, altitude_m: float | None = None,
                   up: np.ndarray | None = None) -> ScaleEstimate | None:
    """Metric scale from the tape's length or the camera's altitude (metres), measured in the seabed frame; None
    without either. A tape that cannot give a scale is a warning of the run."""
    if tape_length_m is None and altitude_m is None:
        return None
    ground = fit_ground_frame(cloud.points, camera_centres, up)
    local, cameras = ground.to_local(cloud.points), ground.to_local(camera_centres)
    if altitude_m is not None:
        return scale_from_altitude(cameras[:, 2] - np.median(local[:, 2]), altitude_m)
    is_tape = np.isin(cloud.labels, taxonomy.ids_with_role("transect_line"))
    scale, warning = scale_from_tape(local, is_tape, tape_length_m, cameras[:, :2], voxel_size)
    if warning:
        warn(warning)
    return scale


def measure_cover(cloud: LabelledCloud, camera_centres: np.ndarray, taxonomy: Taxonomy, settings: CoverSettings,
                  groups: ClassGroups, up: np.ndarray | None = None, unit: float = 1.0) -> MeasuredCover:
    """Level the cloud on its seabed plane, rasterise it from above, measure cover (planar, 3D surface, point count)
    of classes and groups, and rugosity.

    Rugosity and the local surface/planar ratio behind the 3D surface cover use a mean-height grid of three voxels
    per cell, which averages out the voxel scatter. With `up` (from gravity) the map is levelled by it, otherwise
    by the fitted seabed plane. `unit` is the length of one map unit of the fusion (voxel size) in the cloud's units,
    when the cloud was rescaled after fusion.
    """
    ground = fit_ground_frame(cloud.points, camera_centres, up)
    cell_size = (settings.cell_size or settings.voxel_size) * unit
    local = ground.to_local(cloud.points)
    rugosity_cell = 3.0 * settings.voxel_size * unit
    heights = height_grid(local, rugosity_cell)
    grid = top_down_grid(local, cloud.labels, cloud.colours, cell_size, top_band=settings.voxel_size * unit,
                         max_id=int(taxonomy.ids.max()), segment_length=settings.segment_length,
                         confidence=cloud.confidence, surface_factor=point_surface_factor(local, heights, rugosity_cell))
    sample = sample_points(grid.labels, taxonomy, cell_size, settings.point_segment_length,
                           settings.points_per_segment, seed=0, origin_uv=grid.origin_uv,
                           confidence_grid=grid.confidence)
    group_taxonomy, lookup = groups.grouping(taxonomy)
    return MeasuredCover(ground, grid, sample, cover_tables(grid, sample, taxonomy),
                         cover_tables(grid, sample, group_taxonomy, lookup),
                         rugosity(heights, rugosity_cell, settings.segment_length), rugosity_cell,
                         LEVELLED_BY_GRAVITY if up is not None else LEVELLED_BY_PLANE)


def tape_record(cloud: LabelledCloud, measured: MeasuredCover, taxonomy: Taxonomy) -> dict | None:
    """The transect tape as the map shows it: its points, span and straightness (None when it is not seen)."""
    is_tape = np.isin(cloud.labels, taxonomy.ids_with_role("transect_line"))
    straightness = tape_straightness(measured.ground.to_local(cloud.points[is_tape])[:, :2])
    if straightness is None:
        return None
    return {"points": int(is_tape.sum()), "span": straightness[1], "line_rms_percent_of_span": straightness[0],
            "note": "RMS distance of the tape's points from their fitted line in the seabed plane, in % of the "
                    "tape's span: a straight tape that bends in the map shows drift or bad depth"}
