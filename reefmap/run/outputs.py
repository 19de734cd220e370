"""The map's files of a run: cloud, cover tables, CoralNet exports, trajectory and ortho rasters."""

from __future__ import annotations

import numpy as np

from reefmap.io.files import StagedOutputs, write_poses_csv
from reefmap.mapping.cloud import write_las, write_ply
from reefmap.mapping.fusion import FrameFuser
from reefmap.mapping.voxels import LabelledCloud
from reefmap.report.measure import MeasuredCover
from reefmap.report.writers import (
    write_coralnet_percent_covers, write_coralnet_points, write_cover_csv, write_height_tiff, write_rgba_png,
    write_segments_csv, write_world_file,
)
from reefmap.taxonomy import Taxonomy

OUTPUT_FILES = ("cloud.ply", "cloud.laz", "cover.csv", "cover_groups.csv", "cover_segments.csv", "points.csv",
                "percent_covers.csv", "trajectory.csv",
                "ortho_labels.png", "ortho_labels.pgw", "ortho_rgb.png", "ortho_rgb.pgw", "ortho_height.tif",
                "ortho_height.tfw", "report.html", "report.png", "summary.json")


def write_map_outputs(outputs: StagedOutputs, cloud: LabelledCloud, fuser: FrameFuser, measured: MeasuredCover,
                      taxonomy: Taxonomy) -> None:
    """Cloud, cover tables, CoralNet exports, trajectory and ortho rasters into the staging folder."""
    grid = measured.grid
    cell_area = grid.cell_size ** 2
    write_ply(cloud, outputs.path("cloud.ply"))
    write_las(cloud, outputs.path("cloud.laz"))
    write_cover_csv(measured.classes, outputs.path("cover.csv"), cell_area)
    write_cover_csv(measured.groups, outputs.path("cover_groups.csv"), cell_area)
    write_segments_csv(measured.classes, grid.segment_length, outputs.path("cover_segments.csv"), cell_area,
                       measured.rugosity.by_segment)
    write_coralnet_points(measured.sample, taxonomy, "ortho_rgb.png", outputs.path("points.csv"))
    write_coralnet_percent_covers(measured.sample, taxonomy, outputs.path("percent_covers.csv"))
    write_poses_csv(np.array(fuser.times), np.stack(fuser.poses), outputs.path("trajectory.csv"))
    valid = grid.labels > 0
    write_rgba_png(taxonomy.colour_lut()[grid.labels], valid, outputs.path("ortho_labels.png"))
    write_rgba_png(grid.rgb, valid, outputs.path("ortho_rgb.png"))
    write_height_tiff(grid.height, outputs.path("ortho_height.tif"))
    for world_file in ("ortho_labels.pgw", "ortho_rgb.pgw", "ortho_height.tfw"):
        write_world_file(outputs.path(world_file), grid.cell_size, grid.origin_uv)
