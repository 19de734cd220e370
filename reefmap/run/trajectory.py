"""The camera path of a transect by structure from motion, before mapping: a first pass over the video writes
keyframes for SfM and runs the pose network on every frame; SfM registers the keyframes, the depth network fixes
its scale, and the learned motion bridges the frames SfM did not register."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reefmap.errors import UsageError
from reefmap.geometry.camera_path import bridge_gaps, motion_disagreement, scale_poses, units_per_metre
from reefmap.geometry.sfm import SfmError, SfmSettings, reconstruct, write_images
from reefmap.io.camera import horizontal_fov_deg
from reefmap.io.files import atomic_path
from reefmap.io.video import FrameSource, prefetch
from reefmap.perception.networks import DepthPoseEstimator, is_featureless
from reefmap.runtime.notices import warn
from reefmap.runtime.timing import StageTimer

CALIBRATION_FRAMES = 24  # keyframes whose network depth sets the SfM map's scale
MIN_KEYFRAMES = 3  # structure from motion needs at least this many keyframes ...
MIN_AUTO_KEYFRAMES = 6  # ... and --mapping auto tries it only from this many (fewer rarely register; failing costs)
MIN_REGISTERED = 0.5  # with --mapping auto, SfM must register this share of its keyframes or the learned path is used
MIN_SWEEP_POINTS = 20  # SfM points a keyframe needs to bound its plane sweep
SWEEP_PARALLAX = 0.04  # a sweep's source view lies at least this share of the keyframe's median depth away ...
MAX_SWEEP_STEPS = 4  # ... if one within this many keyframes does (else the farthest of them)
MAX_FOCAL_CHANGE = 2.0  # a self-calibrated focal length further than this factor from the guess is not believed


@dataclass
class CameraPath:
    """Camera-to-world poses of every sampled frame (`poses` (N, 4, 4), in the depth network's units) and the
    sparse SfM points each keyframe sees (`views[i]` (M_i, 3): u, v at the processing size, z in those units)."""

    poses: np.ndarray
    views: list[np.ndarray]
    record: dict = field(default_factory=dict)
    registered: np.ndarray | None = None  # (N,) frames whose pose SfM found
    depth_dir: Path | None = None  # plane-sweep depth of keyframes, `<frame>.npy`

    def swept_depth(self, frame: int) -> np.ndarray | None:
        """The plane-sweep depth (h, w) float32 of keyframe `frame` (0 = none), or None when it has none."""
        path = None if self.depth_dir is None else self.depth_dir / f"{frame:06d}.npy"
        return np.load(path).astype(np.float32) if path is not None and path.exists() else None

    def state(self) -> dict[str, np.ndarray]:
        counts = np.array([len(v) for v in self.views], np.int64)
        points = np.concatenate(self.views) if self.views else np.zeros((0, 3), np.float32)
        return {"poses": self.poses, "view_counts": counts, "view_points": points,
                "record": np.array(json.dumps(self.record)), "depth_dir": np.array(str(self.depth_dir or ""))}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> "CameraPath":
        splits = np.cumsum(state["view_counts"])[:-1]
        depth_dir = str(state["depth_dir"]) if "depth_dir" in state else ""
        return cls(state["poses"], list(np.split(state["view_points"], splits)), json.loads(str(state["record"])),
                   depth_dir=Path(depth_dir) if depth_dir else None)


INIT_BASELINE_S = 1.6  # seconds of swimming between the two keyframes a model starts from


def init_gap(keyframes_per_s: float) -> int:
    """How many keyframes apart the pair a model starts from lies: about `INIT_BASELINE_S` of swimming (a wide
    enough baseline on a flat seabed, within the sequential matching's reach)."""
    return int(min(SfmSettings.overlap, max(2, round(INIT_BASELINE_S * keyframes_per_s))))


def keyframe_step(fps: float, sfm_fps: float) -> int:
    """Every how many sampled frames one goes to SfM."""
    if not sfm_fps > 0:
        raise UsageError(f"--sfm-fps {sfm_fps} must be positive (e.g. 5)")
    return max(1, int(round(fps / sfm_fps)))


def sfm_camera_path(source: FrameSource, estimator: DepthPoseEstimator, mapping: str, sfm_fps: float,
                    batch_size: int, work_dir: Path, depth_dir: Path, sweep_size: tuple[int, int], timer: StageTimer,
                    threads: int = -1, quiet: bool = False) -> CameraPath | None:
    """The SfM camera path of `source`'s frames, with plane-sweep depth of its keyframes at `sweep_size` in
    `depth_dir`; None when `mapping` is "auto" and SfM failed (a warning says so). With "sfm" a failure is an
    error. `work_dir` holds the keyframes and the SfM database while it runs.

    When the source's camera is a guess (no profile), SfM refines its focal length (self-calibration: pinhole, one
    focal length); the record's `self_calibration` holds the result, which the caller gives the source."""
    step = keyframe_step(source.fps, sfm_fps)
    relatives, calibration = _first_pass(source, estimator, step, batch_size, work_dir / "images", timer, quiet)
    keyframes = np.arange(0, len(relatives), step)
    if len(relatives) == 0:
        return None  # nothing decoded: the mapping stage says so
    try:
        needed = MIN_AUTO_KEYFRAMES if mapping == "auto" else MIN_KEYFRAMES
        if len(keyframes) < needed:
            raise SfmError(f"{len(keyframes)} keyframes are too few for structure from motion (it needs {needed}: "
                           f"{needed / (source.fps / step):g} s of video at --sfm-fps {sfm_fps:g})")
        with timer.stage("sfm", len(keyframes)):
            K = source.camera.K
            settings = SfmSettings(threads=threads, init_gap=init_gap(source.fps / step))
            params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]
            if source.camera_guessed:
                settings = replace(settings, camera_model="SIMPLE_PINHOLE", refine_intrinsics=True)
                params = [K[0, 0], K[0, 2] + 0.5, K[1, 2] + 0.5]
            sfm = reconstruct(work_dir / "images", len(keyframes), params, work_dir, settings)
        self_calibration = None
        if source.camera_guessed:
            self_calibration = focal_record(K[0, 0], sfm.camera_params[0], source.size[0])
            K = np.array([[sfm.camera_params[0], 0, K[0, 2]], [0, sfm.camera_params[0], K[1, 2]], [0, 0, 1]])
        disagreeing = motion_disagreement(sfm.poses[:, :3, 3], sfm.registered, _learned_steps(relatives, keyframes))
        sfm.registered &= ~disagreeing
        if disagreeing.any():
            warn(f"{disagreeing.sum()} SfM keyframes moved far unlike the pose network's motion and were "
                 "left to it")
        if sfm.registered.mean() < MIN_REGISTERED:
            raise SfmError(f"structure from motion registered only {sfm.registered.sum()} of {len(keyframes)} "
                           "keyframes")
        usable = [k for k in calibration if sfm.registered[k // step]]
        scale = units_per_metre([calibration[k] for k in usable], [sfm.views[k // step] for k in usable], source.size)
        if scale is None:
            raise SfmError("structure from motion triangulated too few points to fix its scale")
        path = _join_with_learned_motion(sfm, relatives, keyframes, scale)
        with timer.stage("plane sweep", int(sfm.registered.sum())):
            swept = sweep_keyframes(work_dir / "images", keyframes, path, K, source.size, sweep_size, depth_dir,
                                    estimator.device, quiet)
    except SfmError as exc:
        if mapping == "sfm":
            raise SfmError(f"{exc}; try --mapping auto (falls back to the learned path) or --mapping learned") from None
        warn(f"{exc}: the camera path comes from the pose network instead (--mapping auto)")
        return None
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    registered = int(sfm.registered.sum())
    path.record = {"method": "sfm", "keyframes": len(keyframes), "keyframe_step": step,
                   "registered_keyframes": registered, "frames_bridged_by_pose_network": len(relatives) - registered,
                   "keyframes_dropped_for_disagreeing_motion": int(disagreeing.sum()),
                   "models": sfm.models, "reprojection_error_px": round(sfm.reprojection_error_px, 4),
                   "sfm_units_per_depth_unit": scale, "keyframes_with_plane_sweep_depth": swept,
                   "seconds": {k: round(v, 2) for k, v in sfm.seconds.items()}}
    if self_calibration is not None:
        path.record["self_calibration"] = self_calibration
    path.depth_dir = depth_dir
    if registered < len(keyframes):
        warn(f"structure from motion registered {registered} of {len(keyframes)} keyframes; the pose "
             "network bridges the others")
    return path


def focal_record(guess_px: float, focal_px: float, width: int) -> dict:
    """The self-calibrated focal length against the guess it started from; an `SfmError` when it moved more than
    `MAX_FOCAL_CHANGE` times (a reconstruction that traded focal length for a wrong shape)."""
    if not 1 / MAX_FOCAL_CHANGE <= focal_px / guess_px <= MAX_FOCAL_CHANGE:
        raise SfmError(f"self-calibration gave a focal length of {focal_px:.0f} px against the guessed {guess_px:.0f} "
                       "px, which is not believable; give the camera with --camera (or make a profile with "
                       "`reefmap calibrate`)")
    return {"method": "structure from motion, pinhole with one focal length refined", "image_width": width,
            "guessed_focal_px": round(float(guess_px), 2), "focal_px": round(float(focal_px), 2),
            "guessed_hfov_deg": round(horizontal_fov_deg(guess_px, width), 2),
            "hfov_deg": round(horizontal_fov_deg(focal_px, width), 2)}


def _learned_steps(relatives: np.ndarray, keyframes: np.ndarray) -> np.ndarray:
    """(K-1,) distance the pose network moved between consecutive keyframes."""
    steps = []
    for a, b in zip(keyframes[:-1], keyframes[1:]):
        motion = np.eye(4)
        for relative in relatives[a + 1:b + 1]:
            motion = motion @ relative
        steps.append(float(np.linalg.norm(motion[:3, 3])))
    return np.array(steps)


def _join_with_learned_motion(sfm, relatives: np.ndarray, keyframes: np.ndarray, scale: float) -> CameraPath:
    """Every frame's pose in depth-network units: SfM keyframes, the rest bridged by learned motion; first = world."""
    poses = np.full((len(relatives), 4, 4), np.nan)
    registered = np.zeros(len(relatives), bool)
    poses[keyframes] = scale_poses(sfm.poses, 1.0 / scale)
    registered[keyframes] = sfm.registered
    views = [np.zeros((0, 3), np.float32) for _ in relatives]
    for j, k in enumerate(keyframes):
        views[k] = sfm.views[j] * np.array([1.0, 1.0, 1.0 / scale], np.float32)
    path = bridge_gaps(poses, registered, relatives)
    return CameraPath(np.linalg.inv(path[0]) @ path, views, registered=registered)


def sweep_keyframes(image_folder: Path, keyframes: np.ndarray, path: CameraPath, K: np.ndarray,
                    image_size: tuple[int, int], size: tuple[int, int], depth_dir: Path, device,
                    quiet: bool = False) -> int:
    """Plane-sweep depth of each registered keyframe against one registered source view on either side (chosen by
    `sweep_sources`), at `size`, over the depth range its SfM points span, then kept only where a neighbouring
    keyframe's sweep confirms it (`consistent_depth`); written as `depth_dir/<frame>.npy` (float16, 0 = no depth).
    `K` is the camera at the keyframes' `image_size`. Returns how many keyframes got depth."""
    from reefmap.geometry.backproject import scale_intrinsics
    from reefmap.geometry.plane_sweep import consistent_depth, sweep_depth

    depth_dir.mkdir(parents=True, exist_ok=True)
    K = scale_intrinsics(K, image_size, size)
    usable = [j for j, k in enumerate(keyframes) if path.registered[k] and len(path.views[k]) >= MIN_SWEEP_POINTS]
    for j in tqdm(usable, unit="keyframe", desc="plane sweep", disable=quiet):
        k = keyframes[j]
        z = path.views[k][:, 2]
        neighbours = sweep_sources(j, keyframes, path, float(np.median(z)))
        if not neighbours:
            continue
        near, far = 0.7 * float(np.percentile(z, 2)), 1.5 * float(np.percentile(z, 98))
        images = [_read_keyframe(image_folder, i, size) for i in [j, *neighbours]]
        depth, _ = sweep_depth(images[0], images[1:], K, path.poses[k], [path.poses[keyframes[i]] for i in neighbours],
                               near, far, device=device)
        np.save(depth_dir / f"{k:06d}.raw.npy", depth.astype(np.float16))
    swept = [keyframes[j] for j in usable if (depth_dir / f"{keyframes[j]:06d}.raw.npy").exists()]
    for n, k in enumerate(swept):
        raw = [np.load(depth_dir / f"{i:06d}.raw.npy").astype(np.float32) for i in swept[max(0, n - 1):n + 2]]
        own = raw.pop(min(n, 1))
        others = [(d, path.poses[i]) for d, i in zip(raw, [i for i in swept[max(0, n - 1):n + 2] if i != k])]
        np.save(depth_dir / f"{k:06d}.npy", consistent_depth(own, K, path.poses[k], others).astype(np.float16))
    for k in swept:
        (depth_dir / f"{k:06d}.raw.npy").unlink()
    return len(swept)


def sweep_sources(j: int, keyframes: np.ndarray, path: CameraPath, median_depth: float) -> list[int]:
    """Indices into `keyframes` of keyframe j's sweep sources: on each side the nearest registered keyframe whose
    camera lies `SWEEP_PARALLAX` x `median_depth` away, within `MAX_SWEEP_STEPS` (else the farthest there).

    Depth from two views is as precise as their baseline is long next to the depth: a slow diver's neighbouring
    keyframes can be a fiftieth of the depth apart, where a pixel of matching error is a tenth of the depth.
    """
    centre = path.poses[keyframes[j]][:3, 3]
    sources = []
    for side in (-1, 1):
        chosen = None
        for i in range(j + side, j + side * (MAX_SWEEP_STEPS + 1), side):
            if not 0 <= i < len(keyframes):
                break
            if not path.registered[keyframes[i]]:
                continue
            chosen = i
            if np.linalg.norm(path.poses[keyframes[i]][:3, 3] - centre) >= SWEEP_PARALLAX * median_depth:
                break
        if chosen is not None:
            sources.append(chosen)
    return sources


def _read_keyframe(folder: Path, number: int, size: tuple[int, int]) -> np.ndarray:
    import cv2

    image = cv2.cvtColor(cv2.imread(str(folder / f"{number:06d}.jpg")), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _first_pass(source: FrameSource, estimator: DepthPoseEstimator, step: int, batch_size: int, image_folder: Path,
                timer: StageTimer, quiet: bool) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Learned relative motion of every frame ((N, 4, 4), row 0 identity) while keyframes go to `image_folder`;
    network depth of up to `CALIBRATION_FRAMES` keyframes spread along the video ({frame: (h, w) depth})."""
    total = len(source)
    calibrate_every = step * max(1, int(np.ceil(total / step / CALIBRATION_FRAMES)))
    relatives: list[np.ndarray] = []
    calibration: dict[int, np.ndarray] = {}
    keyframes: list[np.ndarray] = []
    written = 0
    previous_featureless = False
    estimator.previous_frame = None
    frames = prefetch(source)
    with tqdm(total=total, unit="frame", desc="camera path", disable=quiet) as bar:
        while True:
            with timer.stage("decode"):
                batch = [f for _, f in zip(range(batch_size), frames)]
            if not batch:
                break
            with timer.stage("pose", len(batch)):
                tensor = estimator.prepare([f.image for f in batch])
                motions = estimator.relative_poses(tensor)
            for k, (frame, motion) in enumerate(zip(batch, motions)):
                featureless = is_featureless(frame.image)
                if motion is None or featureless or previous_featureless or not np.isfinite(motion).all():
                    motion = np.eye(4)
                previous_featureless = featureless
                relatives.append(motion)
                if frame.index % step == 0:
                    keyframes.append(frame.image)
                if frame.index % calibrate_every == 0:
                    with timer.stage("depth", 1):
                        calibration[frame.index] = estimator.depth(tensor[k:k + 1])[0]
            with timer.stage("keyframes"):
                written += write_images(keyframes, image_folder, first=written)
            keyframes.clear()
            bar.update(len(batch))
    estimator.previous_frame = None
    if not relatives:
        return np.zeros((0, 4, 4)), calibration
    return np.stack(relatives), calibration


def cached_camera_path(saved: Path, source: FrameSource, estimator: DepthPoseEstimator, mapping: str, sfm_fps: float,
                       batch_size: int, work_dir: Path, depth_dir: Path, sweep_size: tuple[int, int],
                       timer: StageTimer, threads: int, quiet: bool = False) -> CameraPath | None:
    """`sfm_camera_path`, kept in `saved` (an .npz in the run's staging folder), so a resumed run does not redo it;
    None when "auto" fell back to the pose network."""
    if saved.exists():
        with np.load(saved) as data:
            state = {k: data[k] for k in data.files}
        return None if "fallback" in state else CameraPath.from_state(state)
    path = sfm_camera_path(source, estimator, mapping, sfm_fps, batch_size, work_dir, depth_dir, sweep_size, timer,
                           threads, quiet)
    with atomic_path(saved) as partial:
        np.savez(partial, **(path.state() if path is not None else {"fallback": np.array(True)}))
    return path
