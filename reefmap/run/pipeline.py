"""Runs the stages in order: frames -> perception -> poses -> voxel map -> cover -> outputs."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from reefmap.config import MAPPINGS, ProcessConfig
from reefmap.errors import EmptyMapError, OutputError, UsageError
from reefmap.geometry.backproject import scale_intrinsics
from reefmap.io.files import StagedOutputs, write_json
from reefmap.io.telemetry import transect_gravity, up_direction
from reefmap.io.video import FrameSource
from reefmap.mapping.fusion import FrameFuser, fusion_size
from reefmap.mapping.voxels import LabelledCloud
from reefmap.perception.networks import load_networks, resolve_device
from reefmap.perception.oracle import TruthReader
from reefmap.perception.streams import NetworkStream, OracleStream
from reefmap.report.cover import CoverRow
from reefmap.report.document import write_report
from reefmap.report.groups import ClassGroups, check_groups, default_groups, load_groups
from reefmap.report.measure import CoverSettings, MeasuredCover, estimate_scale, measure_cover, tape_record
from reefmap.report.summary import RunSummary
from reefmap.report.trust import coverage_verdict, geometry_verdict, segmentation_verdict, trust_lines, trust_record
from reefmap.run.outputs import write_map_outputs
from reefmap.run.resume import load_checkpoint, remove_checkpoint, run_key, save_checkpoint
from reefmap.run.summary import build_summary, mapping_line, mapping_record, scale_record
from reefmap.run.trajectory import CameraPath, cached_camera_path, keyframe_step
from reefmap.runtime.notices import collect_notices, show_notices, warn
from reefmap.runtime.timing import StageTimer
from reefmap.taxonomy import Taxonomy, default_taxonomy

STATIC_PATH = 0.05  # camera paths shorter than this many map units are reported as a camera that never moved


@dataclass
class ProcessResult:
    """What a run produced: file paths, the cover table, the cloud and the summary written beside them."""

    out_dir: Path
    cover: list[CoverRow]
    cloud: LabelledCloud
    summary: RunSummary
    files: list[Path] = field(default_factory=list)

    @property
    def cloud_path(self) -> Path:
        return self.out_dir / "cloud.ply"

    def trust_lines(self) -> list[str]:
        """Where the camera path came from and how far to trust the run, in a few lines for the terminal."""
        return [mapping_line(self.summary.mapping), *trust_lines(self.summary.trust)]


@dataclass
class OpenedRun:
    """A run's inputs, opened: the frames, the stream of labelled frames, its classes and networks, the staging
    folder of its outputs."""

    config: ProcessConfig
    source: FrameSource
    stream: NetworkStream | OracleStream
    taxonomy: Taxonomy
    networks: dict  # task -> loaded network; empty with --oracle
    groups: ClassGroups
    outputs: StagedOutputs
    device: torch.device
    timer: StageTimer


def run(videos: Sequence[str | Path], out_dir: str | Path, config: ProcessConfig) -> ProcessResult:
    """Process one transect (one or more chapter files) into `out_dir`.

    Every `config.checkpoint_s` seconds the run's state is saved in its staging folder; a run that was killed or
    interrupted continues from there when started again with the same inputs and settings. The run's warnings are
    collected for it alone (runs in other threads keep theirs), written to summary.json and shown once it has
    succeeded (a failed run shows only its error).
    """
    check_settings(config)
    opened = open_run(videos, out_dir, config)
    with collect_notices() as notices:
        try:
            result = _process(opened, out_dir, notices)
        except KeyboardInterrupt:
            opened.outputs.release()
            raise
        except BaseException:
            opened.outputs.discard()
            raise
    show_notices(notices)
    return result


def check_settings(config: ProcessConfig) -> None:
    """Settings that cannot make a run are a one-line usage error before any work."""
    if config.batch_size < 1 or config.fusion_stride < 1 or min(config.voxel_size, config.max_depth,
                                                                config.segment_length) <= 0:
        raise UsageError("--batch-size and --fusion-stride must be >= 1; --voxel-size, --max-depth and --segment-m > 0")
    if config.tape_length_m is not None and config.altitude_m is not None:
        raise UsageError("give one scale reference: --tape-length-m or --altitude-m, not both")
    if any(v is not None and not v > 0 for v in (config.tape_length_m, config.altitude_m)):
        raise UsageError("--tape-length-m and --altitude-m are lengths in metres and must be positive")
    if config.mapping not in MAPPINGS:
        raise UsageError(f"--mapping {config.mapping!r} is not one of {', '.join(MAPPINGS)}")
    if config.oracle and config.mapping != ProcessConfig.mapping:
        raise UsageError("--oracle takes the true camera path; leave out --mapping")
    keyframe_step(config.fps, config.sfm_fps)


def open_run(videos: Sequence[str | Path], out_dir: str | Path, config: ProcessConfig) -> OpenedRun:
    """Open the videos, load the networks (or the oracle's truth) and the class groups, and the staging folder."""
    timer = StageTimer()
    device = resolve_device(config.device)
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    groups = load_groups(config.groups) if config.groups else default_groups()
    truth = TruthReader(config.oracle) if config.oracle else None
    camera = str(truth.camera_profile) if truth and config.camera == "auto" else config.camera
    source = FrameSource(videos, config.fps, config.start_s, config.end_s, config.width, camera, config.hfov_deg)
    if truth:
        taxonomy = default_taxonomy()
        stream, networks = OracleStream(source, truth, taxonomy, timer), {}
        truth_file = Path(config.oracle) / "truth.json"
        key_weights = [str(truth_file.resolve()), str(truth_file.stat().st_mtime_ns)]
    else:
        segmenter, estimator = load_networks(config.seg_weights, config.depth_weights, device)
        taxonomy, networks = segmenter.taxonomy, {"segmentation": segmenter, "depth_pose": estimator}
        stream = NetworkStream(source, segmenter, estimator, timer, config.batch_size, config.smooth_labels,
                               config.detect_tape)
        key_weights = [segmenter.weights.sha256, estimator.weights.sha256]
    if config.groups:
        check_groups(groups, taxonomy)
    outputs = StagedOutputs(out_dir, run_key([Path(v) for v in videos], config, key_weights, str(device)))
    return OpenedRun(config, source, stream, taxonomy, networks, groups, outputs, device, timer)


def _process(opened: OpenedRun, out_dir: str | Path, notices: list[str]) -> ProcessResult:
    """The stages, in order, into the staging folder; the outputs appear in `out_dir` only once all are written."""
    config, source, outputs, timer = opened.config, opened.source, opened.outputs, opened.timer
    camera_path = _camera_path(opened)
    if camera_path is not None:
        opened.stream.use_camera_path(camera_path)
    _settle_camera(source, camera_path, config)
    fuser = _fuser(opened)
    resumed_from = _resume(outputs, opened.stream, fuser)
    _map_frames(opened.stream, fuser, outputs, config, timer, len(source))
    cloud, measured, path_length = _measure(opened, fuser)
    try:
        with timer.stage("write"):
            write_map_outputs(outputs, cloud, fuser, measured, opened.taxonomy)
        mapping = mapping_record(config, camera_path, len(fuser.poses))
        disagreements = getattr(opened.stream, "disagreements", None)
        if disagreements:
            mapping["network_depth_disagreement_median"] = round(float(np.median(disagreements)), 4)
        tape = tape_record(cloud, measured, opened.taxonomy)
        segmenter = opened.networks.get("segmentation")
        segment_cells = measured.grid.segment_cells
        trust = trust_record({
            "geometry": geometry_verdict(mapping, tape, scale_record(measured.scale),
                                         source.camera_guessed and not config.oracle),
            "segmentation": segmentation_verdict(segmenter.weights.card if segmenter else None,
                                                 measured.sample.confidence),
            "coverage": coverage_verdict(len(fuser.poses), len(fuser.poses) - len(fuser.skipped), len(segment_cells),
                                         int((segment_cells.sum(axis=1) == 0).sum())),
        })
        summary = build_summary(
            source=source, config=config, taxonomy_name=opened.taxonomy.name, networks=opened.networks,
            device=opened.device, fuser=fuser, cloud=cloud, measured=measured, timer=timer,
            groups_file=opened.groups.source,
            network_health=opened.stream.health | {"featureless_frames_skipped": len(fuser.skipped)},
            mapping=mapping, camera_path_length=path_length, tape=tape, resumed_from_frame=resumed_from,
            warnings=list(notices), trust=trust)
        with timer.stage("report"):
            write_report(outputs.staging, summary)
        write_json(summary.to_dict(), outputs.path("summary.json"))
        remove_checkpoint(outputs.staging)
        files = outputs.commit(last="summary.json")
    except OSError as exc:
        raise OutputError(f"cannot write the outputs to {out_dir}: {exc.strerror or exc}; free some space or "
                          "choose another --out (nothing was finished)") from None
    return ProcessResult(Path(out_dir), measured.cover, cloud, summary, files)


def _fuser(opened: OpenedRun) -> FrameFuser:
    config, source, taxonomy = opened.config, opened.source, opened.taxonomy
    depth_folder = None
    if config.save_depth:
        depth_folder = opened.outputs.path("depth")
        depth_folder.mkdir(exist_ok=True)
    size = fusion_size(source.size, config.fusion_stride)
    dropped = np.isin(taxonomy.ids, taxonomy.ids_with_role("ignore_in_cloud"))
    return FrameFuser(size, scale_intrinsics(source.camera.K, source.size, size), taxonomy.ids, dropped,
                      config.voxel_size, config.max_depth, depth_folder, opened.outputs.path(".finalised"))


def _camera_path(opened: OpenedRun) -> CameraPath | None:
    """The SfM camera path for --mapping sfm/auto; None for the learned path, with --oracle, or when auto fell back
    to the pose network."""
    config, outputs = opened.config, opened.outputs
    if config.oracle or config.mapping == "learned":
        return None
    return cached_camera_path(outputs.path(".camera_path.npz"), opened.source, opened.networks["depth_pose"],
                              config.mapping, config.sfm_fps, config.batch_size, outputs.path(".sfm"),
                              outputs.path(".swept_depth"), fusion_size(opened.source.size, config.fusion_stride),
                              opened.timer, config.threads or os.cpu_count() or 1, config.quiet)


def _settle_camera(source: FrameSource, camera_path: CameraPath | None, config: ProcessConfig) -> None:
    """A guessed camera takes the focal length structure from motion found for it; the run warns that no profile
    matched either way."""
    if not source.camera_guessed or config.oracle:
        return
    asked = "--camera generic was given" if config.camera == "generic" else "no camera profile matched this video"
    calibrated = camera_path.record.get("self_calibration") if camera_path is not None else None
    if calibrated:
        source.use_focal_length(calibrated["focal_px"])
        warn(f"{asked}: the focal length comes from structure from motion ({calibrated['hfov_deg']:.1f} degrees "
             f"horizontal field of view, from a {calibrated['guessed_hfov_deg']:.0f}-degree guess); for the surest "
             "scale give --camera NAME or make a profile with `reefmap calibrate`")
    else:
        warn(f"{asked}: a generic {config.hfov_deg:g}-degree field of view is assumed and nothing measured it, which "
             "can put the scale off by several percent; give --camera NAME, make a profile with `reefmap calibrate`, "
             "or let --mapping auto self-calibrate")


def _resume(outputs: StagedOutputs, stream, fuser: FrameFuser) -> int | None:
    """Restore the stream and the map from a checkpoint of this same run; the number of frames it holds, or None."""
    checkpoint = load_checkpoint(outputs.staging) if outputs.resumed else None
    if checkpoint is None:
        return None
    stream.restore(checkpoint["stream"])
    fuser.restore(checkpoint["fuser"])
    warn(f"resumed an interrupted run of this video and these settings from frame {len(fuser.poses)}")
    return len(fuser.poses)


def _map_frames(stream, fuser: FrameFuser, outputs: StagedOutputs, config: ProcessConfig, timer: StageTimer,
                total: int) -> None:
    """Fuse every frame of the stream, saving a checkpoint between batches every `config.checkpoint_s` seconds."""
    last_checkpoint = time.monotonic()
    with tqdm(total=total, initial=len(fuser.poses), unit="frame", desc="mapping", disable=config.quiet,
              file=sys.stderr) as bar:
        for item in stream:
            with timer.stage("fusion", 1):
                fuser.add(item.frame, item.channel, item.confidence, item.depth, item.pose, item.featureless)
            bar.update(1)
            due = config.checkpoint_s > 0 and time.monotonic() - last_checkpoint >= config.checkpoint_s
            if due and stream.between_batches():
                with timer.stage("checkpoint"):
                    save_checkpoint(outputs.staging, {"stream": stream.state(), "fuser": fuser.state()})
                last_checkpoint = time.monotonic()


def _measure(opened: OpenedRun, fuser: FrameFuser) -> tuple[LabelledCloud, MeasuredCover, float]:
    """The cloud, its cover and the camera path length; empty or degenerate maps are one clear error or warning."""
    config, source, taxonomy, timer = opened.config, opened.source, opened.taxonomy, opened.timer
    if not fuser.poses:
        raise EmptyMapError(f"no frames were decoded between {source.start_s:g} s and {source.end_s:g} s; widen --start/--end")
    if len(fuser.skipped) == len(fuser.poses):
        raise EmptyMapError(f"all {len(fuser.poses)} frames are featureless (black, blank or open water); check the "
                            "video shows the seabed, or choose its seabed part with --start/--end")
    if fuser.skipped:
        warn(f"{len(fuser.skipped)} of {len(fuser.poses)} frames were featureless (black, blank or open "
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
        scale = estimate_scale(cloud, fuser.centres, taxonomy, config.voxel_size, config.tape_length_m,
                               config.altitude_m, up)
        if scale is not None:
            cloud = replace(cloud, points=(cloud.points * scale.factor).astype(np.float32))
            fuser.rescale(scale.factor)
        measured = measure_cover(cloud, fuser.centres, taxonomy, cover_settings(config), opened.groups, up,
                                 unit=scale.factor if scale else 1.0)
        measured.scale = scale
    centres = fuser.centres
    path_length = float(np.linalg.norm(np.diff(centres, axis=0), axis=1).sum()) if len(centres) > 1 else 0.0
    if path_length < STATIC_PATH:
        warn(f"the camera barely moved ({path_length:.3f} map units over {len(fuser.poses)} frames): the map "
             "is what a single view sees, not a transect")
    return cloud, measured, path_length


def cover_settings(config: ProcessConfig) -> CoverSettings:
    """The cover stage's settings out of a run's."""
    return CoverSettings(config.voxel_size, config.cell_size, config.segment_length, config.point_segment_length,
                         config.points_per_segment)
