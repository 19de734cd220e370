"""Building the run's typed record (`reefmap.report.summary.RunSummary`) from the stages' results."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import cv2
import numpy as np
import torch

from reefmap import __version__
from reefmap.config import ProcessConfig
from reefmap.geometry.scale import ScaleEstimate
from reefmap.io.video import FrameSource
from reefmap.mapping.fusion import DEPTH_MAP_SCALE, FrameFuser
from reefmap.mapping.voxels import LabelledCloud
from reefmap.perception.networks import DepthPoseEstimator
from reefmap.report.measure import MeasuredCover
from reefmap.report.summary import RunSummary
from reefmap.report.tables import CoverTables
from reefmap.run.outputs import OUTPUT_FILES
from reefmap.run.trajectory import CameraPath
from reefmap.runtime.timing import StageTimer

CARD_FIELDS = ("task", "architecture", "encoder", "depth_encoder", "pose_encoder", "input_size", "sliding_window",
               "source", "training")
POINT_COUNT_METHOD = ("{points} random points on the top-down map per {length:g}-unit segment; segments weighted by "
                      "their mapped area (stratified estimate); variance from point sampling plus label uncertainty "
                      "(1 - vote confidence); 95 % Wilson interval at the effective number of points")


def build_summary(*, source: FrameSource, config: ProcessConfig, taxonomy_name: str, networks: dict, device,
                  fuser: FrameFuser, cloud: LabelledCloud, measured: MeasuredCover, timer: StageTimer, groups_file: str,
                  network_health: dict, mapping: dict, camera_path_length: float, tape: dict | None,
                  resumed_from_frame: int | None, warnings: list[str], trust: dict) -> RunSummary:
    """The record of a run: inputs, settings, weights, versions, timings, cover and how far to trust it.
    `networks` maps a task name to its loaded network (empty with --oracle)."""
    grid, cover = measured.grid, measured.cover
    frames = len(fuser.poses)
    total_s = sum(timer.seconds.values())
    return RunSummary(
        reefmap_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        inputs=[{"path": str(Path(v.path).resolve()), "width": v.width, "height": v.height, "fps": v.fps,
                 "frames": v.frame_count, "duration_s": round(v.duration_s, 3)} for v in source.videos],
        settings=config.to_dict(),
        window_s=[source.start_s, source.end_s],
        processing_size=list(source.size),
        camera={"native": source.native_camera.to_dict(), "processing": source.camera.to_dict()},
        device=str(device),
        threads=torch.get_num_threads(),
        weights={name: {"path": str(n.weights.path.resolve()), "sha256": n.weights.sha256,
                        "card": {k: n.weights.card.get(k) for k in CARD_FIELDS}} for name, n in networks.items()},
        perception="oracle (true depth, labels and poses)" if config.oracle else "networks",
        taxonomy=taxonomy_name,
        versions=versions(),
        frames_processed=frames,
        units=units(config, networks.get("depth_pose"), measured.scale),
        scale=scale_record(measured.scale),
        map={"points": len(cloud), "voxel_size": config.voxel_size, "cell_size": grid.cell_size,
             "ortho_size": [int(grid.labels.shape[1]), int(grid.labels.shape[0])],
             "mapped_cells": int((grid.labels > 0).sum()),
             "seabed_frame": {"origin": measured.ground.origin, "axes_rows_u_v_up": measured.ground.axes},
             "rasters": "ortho_*.png/tif with world files: x = u (along the transect), y = v (across), in map "
                        "units of the seabed frame: (u, v, height) = axes @ (point - origin)"},
        timings={"stages": timer.report(), "total_s": round(total_s, 3),
                 "frames_per_s": round(frames / total_s, 3) if total_s > 0 else None},
        cover=cover_summary(measured.classes, grid.cell_size ** 2),
        group_cover=cover_summary(measured.groups, grid.cell_size ** 2),
        groups_file=groups_file,
        point_count_method=POINT_COUNT_METHOD.format(points=config.points_per_segment,
                                                     length=config.point_segment_length),
        surface_cover_method="each top-surface cell weighted by the local surface/planar ratio of the "
                             "triangulated height grid (the grid behind rugosity)",
        levelled_by=measured.levelled_by,
        rugosity={"overall": measured.rugosity.overall, "by_segment": measured.rugosity.by_segment,
                  "planar_area": measured.rugosity.planar_area, "height_grid_cell": measured.rugosity_cell,
                  "method": "triangulated top-surface height grid: surface area / planar area"},
        segments={"length": config.segment_length, "count": len(grid.segment_cells),
                  "along": "the seabed's main direction, in the direction of travel, from the start of the map"},
        excluded_classes=[r.name for r in cover if r.excluded],
        outputs=list(OUTPUT_FILES) + (["depth/"] if config.save_depth else []),
        depth_maps={"path": "depth/{:06d}.png",
                    "scale": DEPTH_MAP_SCALE * (measured.scale.factor if measured.scale else 1.0),
                    "size": list(fuser.size), "frames": "row N of trajectory.csv"} if config.save_depth else None,
        network_health=network_health,
        mapping=mapping,
        camera_path_length=camera_path_length,
        tape=tape,
        resumed_from_frame=resumed_from_frame,
        warnings=warnings,
        trust=trust,
    )


def scale_record(scale: ScaleEstimate | None) -> dict | None:
    """The metric scale the map was given, or None."""
    if scale is None:
        return None
    return {"factor": scale.factor, "source": scale.source, "measured_in_map_units": scale.measured,
            "uncertainty_percent": scale.uncertainty_percent}


def mapping_record(config: ProcessConfig, camera_path: CameraPath | None, frames: int) -> dict:
    """How the camera path was found, and how many of the run's `frames` each method placed."""
    if config.oracle:
        return {"requested": "oracle", "method": "true poses of the synthetic transect", "frames_placed": {"truth": frames}}
    if camera_path is None:
        method = "pose network (learned)" if config.mapping == "learned" else \
            "pose network (learned): structure from motion failed, see warnings"
        return {"requested": config.mapping, "method": method, "frames_placed": {"pose_network": frames}}
    by_sfm = int(camera_path.record["registered_keyframes"])
    return {"requested": config.mapping, **camera_path.record,
            "frames_placed": {"structure_from_motion": by_sfm, "pose_network": frames - by_sfm}}


def mapping_line(mapping: dict) -> str:
    """The camera path's origin in one line for the terminal."""
    placed = mapping["frames_placed"]
    if "truth" in placed:
        return f"camera path: the synthetic transect's true poses ({placed['truth']} frames)"
    if "structure_from_motion" in placed:
        return (f"camera path: structure from motion placed {placed['structure_from_motion']} keyframes, the pose "
                f"network bridged {placed['pose_network']} frames between them")
    return f"camera path: the pose network alone ({placed['pose_network']} frames; {mapping['method']})"


def cover_summary(tables: CoverTables, cell_area: float) -> list[dict]:
    """The cover tables as JSON records: planar and surface percent and area, point count with interval."""
    records = []
    for row, surface in zip(tables.planar, tables.surface):
        point = tables.points.get(row.class_id)
        records.append({
            "class_id": row.class_id, "class_name": row.name, "colour": list(tables.taxonomy.by_id(row.class_id).colour),
            "excluded": row.excluded,
            "percent_cover": row.percent, "cells": row.cells, "planar_area": row.cells * cell_area,
            "surface_percent": surface.percent, "surface_area": surface.cells * cell_area,
            "point_count": None if row.excluded or point is None else {
                "percent": point.percent, "standard_error": point.standard_error, "ci95": [point.ci_low, point.ci_high],
                "mean_confidence": point.mean_confidence}})
    return records


def units(config: ProcessConfig, estimator: DepthPoseEstimator | None, scale: ScaleEstimate | None) -> str:
    """What one unit of the map's lengths is."""
    if config.oracle:
        return "metres (oracle truth)"
    if scale is not None and scale.measured > 0:
        return f"metres, scaled by {scale.source} (x{scale.factor:.4f}, +-{scale.uncertainty_percent:.1f} %)"
    if estimator.weights.card.get("depth_units") == "metres":
        return "metres as estimated by the depth network (trained with metric depth; no scale reference used)"
    return "relative units of the depth network (not metric)"


def versions() -> dict:
    """Versions of the libraries that decide the result."""
    import segmentation_models_pytorch
    import timm

    from reefmap.runtime.o3d import open3d

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "segmentation_models_pytorch": segmentation_models_pytorch.__version__,
        "open3d": open3d().__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }
