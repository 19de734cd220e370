"""Runs the stages in order: frames -> perception -> poses -> voxel map -> cover -> outputs."""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from reefmap import __version__
from reefmap.config import ProcessConfig
from reefmap.errors import EmptyMapError, OutputError, UsageError
from reefmap.geometry.backproject import backproject, scale_intrinsics
from reefmap.geometry.scale import ScaleEstimate, scale_from_altitude, scale_from_tape, tape_straightness
from reefmap.geometry.transforms import transform_points
from reefmap.io.files import StagedOutputs, atomic_path, write_json, write_poses_csv
from reefmap.io.telemetry import transect_gravity, up_direction
from reefmap.io.video import Frame, FrameSource
from reefmap.mapping.cloud import write_las, write_ply
from reefmap.mapping.spill import FinishedPoints
from reefmap.mapping.streaming import StreamingMap, camera_reach
from reefmap.mapping.voxels import LabelledCloud
from reefmap.models.weights import default_weights, load_weights
from reefmap.perception.networks import DepthPoseEstimator, Segmenter, is_featureless, resolve_device
from reefmap.perception.oracle import TruthReader
from reefmap.perception.streams import NetworkStream, OracleStream
from reefmap.report.cover import CoverRow, GroundFrame, TopDownGrid, fit_ground_frame, top_down_grid
from reefmap.report.document import write_report
from reefmap.report.groups import ClassGroups, check_groups, default_groups, load_groups
from reefmap.report.rugosity import Rugosity, height_grid, point_surface_factor, rugosity
from reefmap.report.tables import CoverTables, cover_tables
from reefmap.report.trust import coverage_verdict, geometry_verdict, segmentation_verdict, trust_record
from reefmap.report.uncertainty import PointSample, sample_points
from reefmap.report.writers import (
    write_coralnet_percent_covers, write_coralnet_points, write_cover_csv, write_height_tiff, write_rgba_png,
    write_segments_csv, write_world_file,
)
from reefmap.run.resume import load_checkpoint, remove_checkpoint, run_key, save_checkpoint
from reefmap.run.trajectory import MAPPINGS, CameraPath, keyframe_step, sfm_camera_path
from reefmap.runtime.timing import StageTimer
from reefmap.taxonomy import Taxonomy, default_taxonomy

OUTPUT_FILES = ("cloud.ply", "cloud.laz", "cover.csv", "cover_groups.csv", "cover_segments.csv", "points.csv",
                "percent_covers.csv", "trajectory.csv",
                "ortho_labels.png", "ortho_labels.pgw", "ortho_rgb.png", "ortho_rgb.pgw", "ortho_height.tif",
                "ortho_height.tfw", "report.html", "report.png", "summary.json")


@dataclass
class ProcessResult:
    """What a run produced: file paths, the cover table, the cloud and the summary written beside them."""

    out_dir: Path
    cover: list[CoverRow]
    cloud: LabelledCloud
    summary: dict
    files: list[Path] = field(default_factory=list)

    @property
    def cloud_path(self) -> Path:
        return self.out_dir / "cloud.ply"


DEPTH_MAP_SCALE = 0.001  # map units per step of the 16-bit depth PNGs written by --save-depth
STATIC_PATH = 0.05  # camera paths shorter than this many map units are reported as a camera that never moved
class FrameFuser:
    """Fuses each labelled depth map with its camera pose into the streaming map: its depth into the surface volume
    (the map's geometry), its back-projected pixels' class votes and colours into the voxel map (the map's labels).

    With `depth_folder` set, each frame's depth at the fusion size is also kept as a 16-bit PNG; with
    `finished_folder`, the finalised part of the map waits there for the end of the run instead of in memory.
    """

    def __init__(self, source: FrameSource, taxonomy: Taxonomy, config: ProcessConfig, depth_folder: Path | None = None,
                 finished_folder: Path | None = None):
        w, h = source.size
        self.size = (max(1, w // config.fusion_stride), max(1, h // config.fusion_stride))
        self.K = scale_intrinsics(source.camera.K, source.size, self.size)
        self.max_depth = config.max_depth
        self.dropped = np.isin(taxonomy.ids, taxonomy.ids_with_role("ignore_in_cloud"))
        reach = camera_reach(self.K, self.size, config.max_depth, config.voxel_size)
        self.map = StreamingMap(config.voxel_size, len(taxonomy), taxonomy.ids, config.max_depth, reach,
                                FinishedPoints(finished_folder))
        self.poses: list[np.ndarray] = []
        self.times: list[float] = []
        self.depth_folder = depth_folder
        self.skipped: list[int] = []

    def state(self) -> dict[str, np.ndarray]:
        """The map and the frames fused so far, as arrays (see `restore`)."""
        return {**{f"map_{k}": v for k, v in self.map.state().items()},
                "poses": np.array(self.poses).reshape(-1, 4, 4), "times": np.array(self.times, np.float64),
                "skipped": np.array(self.skipped, np.int64)}

    def rescale(self, factor: float) -> None:
        """Multiply the camera positions by `factor` (the map was given a metric scale after fusion)."""
        self.poses = [np.vstack([np.hstack([p[:3, :3], p[:3, 3:] * factor]), p[3:]]) for p in self.poses]

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.map.restore({k[4:]: v for k, v in state.items() if k.startswith("map_")})
        self.poses, self.times = list(state["poses"]), [float(t) for t in state["times"]]
        self.skipped = [int(k) for k in state["skipped"]]

    def add(self, frame: Frame, channel: np.ndarray, confidence: np.ndarray, depth: np.ndarray, pose: np.ndarray) -> None:
        """`channel` (h, w) class channels, `confidence` (h, w) vote weights, `depth` (h', w'), camera-to-world `pose`.

        Featureless frames keep their place in the trajectory but add nothing to the map (counted in `skipped`).
        """
        self.poses.append(pose)
        self.times.append(frame.time_s)
        if is_featureless(frame.image):
            self.skipped.append(len(self.poses) - 1)
            return
        channel = cv2.resize(channel, self.size, interpolation=cv2.INTER_NEAREST)
        confidence = cv2.resize(confidence, self.size, interpolation=cv2.INTER_NEAREST)
        depth = cv2.resize(depth, self.size, interpolation=cv2.INTER_NEAREST)
        if self.depth_folder is not None:
            steps = np.clip(np.rint(np.nan_to_num(depth) / DEPTH_MAP_SCALE), 0, 65535).astype(np.uint16)
            target = self.depth_folder / f"{len(self.poses) - 1:06d}.png"
            if not cv2.imwrite(str(target), steps):
                raise OutputError(f"cannot write the depth image {target}; check the output folder's free space and "
                                  "permissions, or run without --save-depth")
        colours = cv2.resize(frame.image, self.size, interpolation=cv2.INTER_AREA)
        keep = (depth > 0) & (depth < self.max_depth) & ~self.dropped[channel]
        points = transform_points(pose, backproject(depth, self.K)[keep])
        self.map.add(points, channel[keep], confidence[keep], colours[keep], np.where(keep, depth, 0.0), self.K, pose)

    def cloud(self) -> LabelledCloud:
        """The fused surface labelled by the votes; frees the map's stores, so it can be taken once."""
        return self.map.cloud()


def _load_networks(config: ProcessConfig, device: torch.device):
    seg_path = Path(config.seg_weights) if config.seg_weights else default_weights("segmentation")
    depth_path = Path(config.depth_weights) if config.depth_weights else default_weights("depth_pose")
    segmenter = Segmenter(load_weights(seg_path, "segmentation", device), device)
    estimator = DepthPoseEstimator(load_weights(depth_path, "depth_pose", device), device)
    return segmenter, estimator


def _open_stream(config: ProcessConfig, source: FrameSource, device: torch.device, timer: StageTimer):
    """The stream of labelled frames for this run, its taxonomy, and the networks (None with --oracle)."""
    if config.oracle:
        taxonomy = default_taxonomy()
        return OracleStream(source, TruthReader(config.oracle), taxonomy, timer), taxonomy, None, None
    segmenter, estimator = _load_networks(config, device)
    return NetworkStream(source, segmenter, estimator, config, timer), segmenter.taxonomy, segmenter, estimator


def _run_key(videos: Sequence[str | Path], config: ProcessConfig, segmenter, estimator, device) -> str:
    if config.oracle:
        truth_file = Path(config.oracle) / "truth.json"
        weights = [str(truth_file.resolve()), str(truth_file.stat().st_mtime_ns)]
    else:
        weights = [segmenter.weights.sha256, estimator.weights.sha256]
    return run_key([Path(v) for v in videos], config, weights, str(device))


def run(videos: Sequence[str | Path], out_dir: str | Path, config: ProcessConfig) -> ProcessResult:
    """Process one transect (one or more chapter files) into `out_dir`.

    Every `config.checkpoint_s` seconds the run's state is saved in its staging folder; a run that was killed or
    interrupted continues from there when started again with the same inputs and settings.
    """
    if config.batch_size < 1 or config.fusion_stride < 1 or min(config.voxel_size, config.max_depth,
                                                                config.segment_length) <= 0:
        raise UsageError("--batch-size and --fusion-stride must be >= 1; --voxel-size, --max-depth and --segment-m > 0")
    if config.tape_length_m is not None and config.altitude_m is not None:
        raise UsageError("give one scale reference: --tape-length-m or --altitude-m, not both")
    if any(v is not None and not v > 0 for v in (config.tape_length_m, config.altitude_m)):
        raise UsageError("--tape-length-m and --altitude-m are lengths in metres and must be positive")
    if config.mapping not in MAPPINGS:
        raise UsageError(f"--mapping {config.mapping!r} is not one of {', '.join(MAPPINGS)}")
    if config.oracle and config.mapping != "learned":
        raise UsageError("--oracle takes the true camera path; leave out --mapping")
    keyframe_step(config.fps, config.sfm_fps)
    timer = StageTimer()
    device = resolve_device(config.device)
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    groups = load_groups(config.groups) if config.groups else default_groups()
    truth_camera = TruthReader(config.oracle).camera_profile if config.oracle and config.camera == "auto" else None
    source = FrameSource(videos, config.fps, config.start_s, config.end_s, config.width,
                         str(truth_camera) if truth_camera else config.camera, config.hfov_deg)
    stream, taxonomy, segmenter, estimator = _open_stream(config, source, device, timer)
    if config.groups:
        check_groups(groups, taxonomy)
    outputs = StagedOutputs(out_dir, _run_key(videos, config, segmenter, estimator, device))
    recorder = warnings.catch_warnings(record=True)
    caught = recorder.__enter__()  # warnings go into summary.json and are shown when the run ends
    warnings.simplefilter("always")
    try:
        depth_folder = None
        if config.save_depth:
            depth_folder = outputs.path("depth")
            depth_folder.mkdir(exist_ok=True)
        fuser = FrameFuser(source, taxonomy, config, depth_folder, outputs.path(".finalised"))
        camera_path = _camera_path(config, source, estimator, outputs, timer)
        if camera_path is not None:
            stream.use_camera_path(camera_path)
        resumed_from = _resume(outputs, stream, fuser)
        _map_frames(stream, fuser, outputs, config, timer, len(source))
        cloud, measured, path_length = _measure(source, fuser, taxonomy, config, groups, timer)
        try:
            with timer.stage("write"):
                write_map_outputs(outputs, cloud, fuser, measured, taxonomy)
            summary = _summary(source, config, taxonomy, segmenter, estimator, device, fuser, cloud, measured, timer,
                               groups.source)
            summary["network_health"] = stream.health | {"featureless_frames_skipped": len(fuser.skipped)}
            summary["mapping"] = _mapping_record(config, camera_path)
            if getattr(stream, "disagreements", None):
                summary["mapping"]["network_depth_disagreement_median"] = round(float(np.median(stream.disagreements)), 4)
            summary["camera_path_length"] = path_length
            summary["tape"] = _tape_record(cloud, measured, taxonomy)
            summary["resumed_from_frame"] = resumed_from
            summary["warnings"] = [str(w.message) for w in caught]
            summary["trust"] = _trust(summary, segmenter, fuser, measured)
            with timer.stage("report"):
                write_report(outputs.staging, summary)
            write_json(summary, outputs.path("summary.json"))
            remove_checkpoint(outputs.staging)
            files = outputs.commit(last="summary.json")
        except OSError as exc:
            raise OutputError(f"cannot write the outputs to {out_dir}: {exc.strerror or exc}; free some space or "
                              "choose another --out (nothing was finished)") from None
    except KeyboardInterrupt:
        outputs.release()
        raise
    except BaseException:
        outputs.discard()
        raise
    finally:
        recorder.__exit__(None, None, None)
        for w in caught:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return ProcessResult(Path(out_dir), measured.cover, cloud, summary, files)


CAMERA_PATH = ".camera_path.npz"


def _camera_path(config: ProcessConfig, source: FrameSource, estimator, outputs: StagedOutputs,
                 timer: StageTimer) -> CameraPath | None:
    """The SfM camera path for --mapping sfm/auto (kept in the staging folder, so a resumed run does not redo it);
    None for the learned path, with --oracle, or when auto fell back to the pose network."""
    if config.oracle or config.mapping == "learned":
        return None
    saved = outputs.path(CAMERA_PATH)
    if saved.exists():
        with np.load(saved) as data:
            state = {k: data[k] for k in data.files}
        return None if "fallback" in state else CameraPath.from_state(state)
    threads = config.threads or os.cpu_count() or 1
    sweep_size = (max(1, source.size[0] // config.fusion_stride), max(1, source.size[1] // config.fusion_stride))
    path = sfm_camera_path(source, estimator, config.mapping, config.sfm_fps, config.batch_size, outputs.path(".sfm"),
                           outputs.path(".swept_depth"), sweep_size, timer, threads, config.quiet)
    with atomic_path(saved) as partial:
        np.savez(partial, **(path.state() if path is not None else {"fallback": np.array(True)}))
    return path


def _mapping_record(config: ProcessConfig, camera_path: CameraPath | None) -> dict:
    """How the camera path was found, for summary.json."""
    if config.oracle:
        return {"requested": "oracle", "method": "true poses of the synthetic transect"}
    if camera_path is None:
        method = "pose network (learned)" if config.mapping == "learned" else \
            "pose network (learned): structure from motion failed, see warnings"
        return {"requested": config.mapping, "method": method}
    return {"requested": config.mapping, **camera_path.record}


def _resume(outputs: StagedOutputs, stream, fuser: FrameFuser) -> int | None:
    """Restore the stream and the map from a checkpoint of this same run; the number of frames it holds, or None."""
    checkpoint = load_checkpoint(outputs.staging) if outputs.resumed else None
    if checkpoint is None:
        return None
    stream.restore(checkpoint["stream"])
    fuser.restore(checkpoint["fuser"])
    warnings.warn(f"resumed an interrupted run of this video and these settings from frame {len(fuser.poses)}")
    return len(fuser.poses)


def _map_frames(stream, fuser: FrameFuser, outputs: StagedOutputs, config: ProcessConfig, timer: StageTimer,
                total: int) -> None:
    """Fuse every frame of the stream, saving a checkpoint between batches every `config.checkpoint_s` seconds."""
    last_checkpoint = time.monotonic()
    with tqdm(total=total, initial=len(fuser.poses), unit="frame", desc="mapping", disable=config.quiet,
              file=sys.stderr) as bar:
        for item in stream:
            with timer.stage("fusion", 1):
                fuser.add(*item)
            bar.update(1)
            due = config.checkpoint_s > 0 and time.monotonic() - last_checkpoint >= config.checkpoint_s
            if due and stream.between_batches():
                with timer.stage("checkpoint"):
                    save_checkpoint(outputs.staging, {"stream": stream.state(), "fuser": fuser.state()})
                last_checkpoint = time.monotonic()


def _measure(source: FrameSource, fuser: FrameFuser, taxonomy: Taxonomy, config: ProcessConfig,
             groups: ClassGroups, timer: StageTimer) -> tuple[LabelledCloud, "MeasuredCover", float]:
    """The cloud, its cover and the camera path length; empty or degenerate maps are one clear error or warning."""
    if not fuser.poses:
        raise EmptyMapError(f"no frames were decoded between {source.start_s:g} s and {source.end_s:g} s; widen --start/--end")
    if len(fuser.skipped) == len(fuser.poses):
        raise EmptyMapError(f"all {len(fuser.poses)} frames are featureless (black, blank or open water); check the "
                            "video shows the seabed, or choose its seabed part with --start/--end")
    if fuser.skipped:
        warnings.warn(f"{len(fuser.skipped)} of {len(fuser.poses)} frames were featureless (black, blank or open "
                      "water) and were left out of the map; the camera is assumed still across them")
    with timer.stage("fusion"):
        cloud = fuser.cloud()
    if len(cloud) < 3:
        raise EmptyMapError(
            f"nothing could be mapped from {len(fuser.poses)} frames: every pixel was water/ignored or farther than "
            f"--max-depth {config.max_depth:g}; check the video shows the seabed, or raise --max-depth"
        )
    with timer.stage("cover"):
        up = None
        if config.use_gravity:
            gravity = transect_gravity([v.path for v in source.videos], [v.duration_s for v in source.videos])
            if gravity is not None:
                up = up_direction(gravity, np.array(fuser.times), np.stack(fuser.poses))
        scale = estimate_scale(cloud, np.stack([p[:3, 3] for p in fuser.poses]), taxonomy, config, up)
        if scale is not None:
            cloud = replace(cloud, points=(cloud.points * scale.factor).astype(np.float32))
            fuser.rescale(scale.factor)
        measured = measure_cover(cloud, np.stack([p[:3, 3] for p in fuser.poses]), taxonomy, config, groups, up,
                                 unit=scale.factor if scale else 1.0)
        measured.scale = scale
    centres = np.array([p[:3, 3] for p in fuser.poses])
    path_length = float(np.linalg.norm(np.diff(centres, axis=0), axis=1).sum()) if len(centres) > 1 else 0.0
    if path_length < STATIC_PATH:
        warnings.warn(f"the camera barely moved ({path_length:.3f} map units over {len(fuser.poses)} frames): the map "
                      "is what a single view sees, not a transect")
    return cloud, measured, path_length


def _tape_record(cloud: LabelledCloud, measured: "MeasuredCover", taxonomy: Taxonomy) -> dict | None:
    """The transect tape as the map shows it: its points, span and straightness (None when it is not seen)."""
    is_tape = np.isin(cloud.labels, taxonomy.ids_with_role("transect_line"))
    straightness = tape_straightness(measured.ground.to_local(cloud.points[is_tape])[:, :2])
    if straightness is None:
        return None
    return {"points": int(is_tape.sum()), "span": straightness[1], "line_rms_percent_of_span": straightness[0],
            "note": "RMS distance of the tape's points from their fitted line in the seabed plane, in % of the "
                    "tape's span: a straight tape that bends in the map shows drift or bad depth"}


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
    levelled_by: str = "seabed plane (PCA of the map)"
    scale: ScaleEstimate | None = None

    @property
    def cover(self) -> list[CoverRow]:
        return self.classes.planar


def estimate_scale(cloud: LabelledCloud, camera_centres: np.ndarray, taxonomy: Taxonomy, config: ProcessConfig,
                   up: np.ndarray | None) -> ScaleEstimate | None:
    """Metric scale from --tape-length-m or --altitude-m, measured in the seabed frame; None without either."""
    if config.tape_length_m is None and config.altitude_m is None:
        return None
    ground = fit_ground_frame(cloud.points, camera_centres, up)
    local, cameras = ground.to_local(cloud.points), ground.to_local(camera_centres)
    if config.altitude_m is not None:
        return scale_from_altitude(cameras[:, 2] - np.median(local[:, 2]), config.altitude_m)
    is_tape = np.isin(cloud.labels, taxonomy.ids_with_role("transect_line"))
    scale, warning = scale_from_tape(local, is_tape, config.tape_length_m, cameras[:, :2], config.voxel_size)
    if warning:
        warnings.warn(warning)
    return scale


def measure_cover(cloud: LabelledCloud, camera_centres: np.ndarray, taxonomy: Taxonomy, config: ProcessConfig,
                  groups: ClassGroups, up: np.ndarray | None = None, unit: float = 1.0) -> MeasuredCover:
    """Level the cloud on its seabed plane, rasterise it from above, measure cover (planar, 3D surface, point count)
    of classes and groups, and rugosity.

    Rugosity and the local surface/planar ratio behind the 3D surface cover use a mean-height grid of three voxels
    per cell, which averages out the voxel scatter. With `up` (from gravity) the map is levelled by it, otherwise
    by the fitted seabed plane. `unit` is the length of one map unit of the fusion (voxel size) in the cloud's units,
    when the cloud was rescaled after fusion.
    """
    ground = fit_ground_frame(cloud.points, camera_centres, up)
    cell_size = (config.cell_size or config.voxel_size) * unit
    local = ground.to_local(cloud.points)
    rugosity_cell = 3.0 * config.voxel_size * unit
    heights = height_grid(local, rugosity_cell)
    grid = top_down_grid(local, cloud.labels, cloud.colours, cell_size, top_band=config.voxel_size * unit,
                         max_id=int(taxonomy.ids.max()), segment_length=config.segment_length,
                         confidence=cloud.confidence, surface_factor=point_surface_factor(local, heights, rugosity_cell))
    sample = sample_points(grid.labels, taxonomy, cell_size, config.point_segment_length, config.points_per_segment,
                           seed=0, origin_uv=grid.origin_uv, confidence_grid=grid.confidence)
    group_taxonomy, lookup = groups.grouping(taxonomy)
    return MeasuredCover(ground, grid, sample, cover_tables(grid, sample, taxonomy),
                         cover_tables(grid, sample, group_taxonomy, lookup),
                         rugosity(heights, rugosity_cell, config.segment_length), rugosity_cell,
                         "gravity from the video's GoPro telemetry (GRAV)" if up is not None else MeasuredCover.levelled_by)


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


def _trust(summary: dict, segmenter, fuser, measured) -> dict:
    """summary.json's `trust`: whether the geometry, the labels and the coverage of this run can be used, and why."""
    segment_cells = measured.grid.segment_cells
    return trust_record({
        "geometry": geometry_verdict(summary["mapping"], summary["tape"], summary["scale"]),
        "segmentation": segmentation_verdict(segmenter.weights.card if segmenter else None, measured.sample.confidence),
        "coverage": coverage_verdict(len(fuser.poses), len(fuser.poses) - len(fuser.skipped), len(segment_cells),
                                     int((segment_cells.sum(axis=1) == 0).sum())),
    })


def _summary(source, config, taxonomy, segmenter, estimator, device, fuser, cloud, measured, timer,
             groups_source) -> dict:
    """The machine-readable record of a run: inputs, settings, weights, versions, timings and cover."""
    grid, cover = measured.grid, measured.cover
    frames = len(fuser.poses)
    total_s = sum(timer.seconds.values())
    return {
        "reefmap_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "inputs": [
            {"path": str(Path(v.path).resolve()), "width": v.width, "height": v.height, "fps": v.fps,
             "frames": v.frame_count, "duration_s": round(v.duration_s, 3)}
            for v in source.videos
        ],
        "settings": config.to_dict(),
        "window_s": [source.start_s, source.end_s],
        "processing_size": list(source.size),
        "camera": {"native": source.native_camera.to_dict(), "processing": source.camera.to_dict()},
        "device": str(device),
        "threads": torch.get_num_threads(),
        "weights": {
            name: {"path": str(w.weights.path.resolve()), "sha256": w.weights.sha256,
                   "card": {k: w.weights.card.get(k) for k in ("task", "architecture", "encoder", "depth_encoder",
                                                                "pose_encoder", "input_size", "sliding_window", "source",
                                                                "training")}}
            for name, w in (("segmentation", segmenter), ("depth_pose", estimator)) if w is not None
        },
        "perception": "oracle (true depth, labels and poses)" if config.oracle else "networks",
        "taxonomy": taxonomy.name,
        "versions": _versions(),
        "frames_processed": frames,
        "units": _units(config, estimator, measured.scale),
        "scale": None if measured.scale is None else {
            "factor": measured.scale.factor, "source": measured.scale.source,
            "measured_in_map_units": measured.scale.measured, "uncertainty_percent": measured.scale.uncertainty_percent},
        "map": {"points": len(cloud), "voxel_size": config.voxel_size, "cell_size": grid.cell_size,
                "ortho_size": [int(grid.labels.shape[1]), int(grid.labels.shape[0])],
                "mapped_cells": int((grid.labels > 0).sum()),
                "seabed_frame": {"origin": measured.ground.origin, "axes_rows_u_v_up": measured.ground.axes},
                "rasters": "ortho_*.png/tif with world files: x = u (along the transect), y = v (across), in map "
                           "units of the seabed frame: (u, v, height) = axes @ (point - origin)"},
        "timings": {"stages": timer.report(), "total_s": round(total_s, 3),
                    "frames_per_s": round(frames / total_s, 3) if total_s > 0 else None},
        "cover": cover_summary(measured.classes, grid.cell_size ** 2),
        "group_cover": cover_summary(measured.groups, grid.cell_size ** 2),
        "groups_file": groups_source,
        "point_count_method": f"{config.points_per_segment} random points on the top-down map per "
                              f"{config.point_segment_length:g}-unit segment; segments weighted by their mapped area "
                              "(stratified estimate); variance from point sampling plus label uncertainty (1 - vote "
                              "confidence); 95 % Wilson interval at the effective number of points",
        "surface_cover_method": "each top-surface cell weighted by the local surface/planar ratio of the "
                                "triangulated height grid (the grid behind rugosity)",
        "levelled_by": measured.levelled_by,
        "rugosity": {"overall": measured.rugosity.overall, "by_segment": measured.rugosity.by_segment,
                     "planar_area": measured.rugosity.planar_area, "height_grid_cell": measured.rugosity_cell,
                     "method": "triangulated top-surface height grid: surface area / planar area"},
        "segments": {"length": config.segment_length, "count": len(grid.segment_cells),
                     "along": "the seabed's main direction, in the direction of travel, from the start of the map"},
        "excluded_classes": [r.name for r in cover if r.excluded],
        "outputs": list(OUTPUT_FILES) + (["depth/"] if config.save_depth else []),
        "depth_maps": {"path": "depth/{:06d}.png",
                       "scale": DEPTH_MAP_SCALE * (measured.scale.factor if measured.scale else 1.0), "size": list(fuser.size),
                       "frames": "row N of trajectory.csv"} if config.save_depth else None,
    }


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


def _units(config: ProcessConfig, estimator: DepthPoseEstimator | None, scale: ScaleEstimate | None) -> str:
    if config.oracle:
        return "metres (oracle truth)"
    if scale is not None and scale.measured > 0:
        return f"metres, scaled by {scale.source} (x{scale.factor:.4f}, +-{scale.uncertainty_percent:.1f} %)"
    if estimator.weights.card.get("depth_units") == "metres":
        return "metres as estimated by the depth network (trained with metric depth; no scale reference used)"
    return "relative units of the depth network (not metric)"


def _versions() -> dict:
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
