"""Camera poses of sampled frames by structure from motion through pycolmap: SIFT features, sequential matching
and incremental mapping, with the (undistorted, pinhole) camera held fixed."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from reefmap.errors import ReefmapError

POINTS_PER_VIEW = 400  # sparse points kept per frame for aligning its depth map


@dataclass
class SfmSettings:
    """How features are found and matched; the defaults suit 640-pixel frames at 5-10 frames/s."""

    max_features: int = 2048
    overlap: int = 8
    threads: int = -1
    seed: int = 0
    init_gap: int = 8  # a chunk's model starts from its first keyframe and the one this many later (<= overlap)
    chunk_size: int = 60  # keyframes mapped together; neighbouring chunks share `chunk_overlap`
    chunk_overlap: int = 12
    camera_model: str = "PINHOLE"  # a COLMAP camera model name
    refine_intrinsics: bool = False  # self-calibration; off for mapping (see `reconstruct`)


@dataclass
class SfmResult:
    """Poses of the frames SfM registered, in its own units, and the sparse points each registered frame sees.

    `poses` (N, 4, 4) camera-to-world (NaN where `registered` is False); `views[i]` is (M_i, 3) float32
    (u, v pixel at the processing size, z depth along the optical axis) of frame i's triangulated points;
    `camera_params` the camera's COLMAP parameters after the reconstruction (refined when asked).
    """

    poses: np.ndarray
    registered: np.ndarray
    views: list[np.ndarray]
    reprojection_error_px: float
    models: int
    camera_params: list[float]
    seconds: dict[str, float] = field(default_factory=dict)


class SfmError(ReefmapError):
    """Structure from motion could not register the frames into one model."""


def write_images(images: Iterable[np.ndarray], folder: Path, first: int = 0) -> int:
    """Write (H, W, 3) RGB frames as JPEGs numbered from `first` into `folder` for pycolmap; the number written."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, image in enumerate(images, start=1):
        name = folder / f"{first + count - 1:06d}.jpg"
        if not cv2.imwrite(str(name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"cannot write {name}")
    return count


def reconstruct(image_folder: Path, count: int, camera_params: list[float] | None, work_dir: Path,
                settings: SfmSettings = SfmSettings()) -> SfmResult:
    """Register the `count` images of `image_folder` (named by `write_images`), all from one camera of
    `settings.camera_model` with COLMAP parameters `camera_params` (None: COLMAP's guess from the image size).

    Unless `settings.refine_intrinsics`, the intrinsics stay fixed in every step: a forward transect cannot
    separate focal length from distortion. Features are matched once over the whole sequence; the mapping runs
    in overlapping chunks of `settings.chunk_size` images joined on their shared frames, so its cost grows
    linearly with the transect's length. In each chunk the largest model is kept; frames outside it, or in a chunk
    that shares too few frames with the ones before, are left unregistered for the caller to bridge.
    """
    import pycolmap

    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    database.unlink(missing_ok=True)
    seconds: dict[str, float] = {}
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = settings.camera_model
    reader.camera_params = "" if camera_params is None else ",".join(f"{v:.8g}" for v in camera_params)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.sift.max_num_features = settings.max_features
    extraction.num_threads = settings.threads
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = settings.threads
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = settings.overlap
    pairing.quadratic_overlap = True
    pairing.num_threads = settings.threads
    names = [f"{k:06d}.jpg" for k in range(count)]
    with _quiet_native_logs():
        started = time.perf_counter()
        pycolmap.extract_features(database, image_folder, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                                  reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
        seconds["features"] = time.perf_counter() - started
        started = time.perf_counter()
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                                  device=pycolmap.Device.cpu)
        seconds["matching"] = time.perf_counter() - started
        started = time.perf_counter()
        chunks = []
        for k, (first, last) in enumerate(chunk_ranges(count, settings.chunk_size, settings.chunk_overlap)):
            # from a fixed pair at the chunk's start: left to choose, the mapper sometimes starts from a pair
            # whose flat seabed admits a wrong solution, and the chunk's scale then runs away along it
            pair = _image_id(database, names[first]), _image_id(database, names[min(last, first + settings.init_gap + 1) - 1])
            models = _map(database, image_folder, work_dir / f"models{k}", names[first:last], settings, *pair)
            if sum(m.num_reg_images() for m in models.values()) < (last - first) / 2:
                models = _map(database, image_folder, work_dir / f"models{k}b", names[first:last], settings)
            if models:
                chunks.append(_result(max(models.values(), key=lambda m: m.num_reg_images()), count, len(models)))
        seconds["mapping"] = time.perf_counter() - started
    if not chunks:
        raise SfmError(f"structure from motion registered none of the {count} frames (too little texture or overlap)")
    result = join_chunks(chunks)
    result.seconds = seconds
    return result


def chunk_ranges(count: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[first, last) image ranges of `size` covering `count` images, neighbours sharing `overlap`; the last range
    takes in a tail of up to `overlap` images rather than leaving it a chunk of its own."""
    ranges, first = [], 0
    while first + size < count - overlap:
        ranges.append((first, first + size))
        first += size - overlap
    return ranges + [(first, count)]


def join_chunks(chunks: list[SfmResult]) -> SfmResult:
    """One result from chunk results in sequence: each chunk is moved onto the ones before it by the similarity
    that best maps its poses of their shared registered frames (see `similarity_on_shared_frames`); the camera's
    parameters are the chunks' medians."""
    from reefmap.geometry.camera_path import apply_similarity, similarity_on_shared_frames

    joined = chunks[0]
    poses, registered = joined.poses.copy(), joined.registered.copy()
    views = list(joined.views)
    errors, models = [joined.reprojection_error_px], joined.models
    for chunk in chunks[1:]:
        shared = registered & chunk.registered
        if shared.sum() < 2:
            continue
        scale, rotation, shift = similarity_on_shared_frames(chunk.poses[shared], poses[shared])
        new = chunk.registered & ~registered
        poses[new] = apply_similarity(chunk.poses[new], scale, rotation, shift)
        for k in np.flatnonzero(new):
            views[k] = chunk.views[k] * np.array([1.0, 1.0, scale], np.float32)
        registered |= new
        errors.append(chunk.reprojection_error_px)
        models += chunk.models
    params = np.median([chunk.camera_params for chunk in chunks], axis=0).tolist()  # equal unless refined per chunk
    return SfmResult(poses, registered, views, float(np.mean(errors)), models, params)


def _image_id(database: Path, name: str) -> int:
    """The id COLMAP's database gave image `name`."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(database)) as connection:
        row = connection.execute("SELECT image_id FROM images WHERE name = ?", (name,)).fetchone()
    return int(row[0])


def _map(database: Path, image_folder: Path, output: Path, names: list[str], settings: SfmSettings,
         first_id: int = -1, second_id: int = -1) -> dict:
    """COLMAP's incremental models of the images `names`, started from the image pair (`first_id`, `second_id`)
    (-1: the mapper's choice)."""
    import pycolmap

    options = pycolmap.IncrementalPipelineOptions()
    refine = settings.refine_intrinsics
    options.ba_refine_focal_length = options.ba_refine_extra_params = refine
    options.ba_refine_principal_point = False
    options.mapper.abs_pose_refine_focal_length = options.mapper.abs_pose_refine_extra_params = refine
    options.extract_colors = False
    options.image_names = names
    options.init_image_id1, options.init_image_id2 = first_id, second_id
    options.mapper.init_min_tri_angle = 8.0  # the pair is fixed, so accept its (smaller) angle
    # a transect is a strip seen a few frames at a time: global adjustment each time the model grew by half
    # instead of a tenth saves time; shorter adjustments were faster still but let a chunk's scale drift
    options.ba_global_frames_ratio = options.ba_global_points_ratio = 1.5
    options.num_threads = settings.threads
    options.random_seed = options.mapper.random_seed = options.triangulation.random_seed = settings.seed
    return pycolmap.incremental_mapping(database, image_folder, output, options=options)


def _result(model, count: int, models: int) -> SfmResult:
    poses = np.full((count, 4, 4), np.nan)
    registered = np.zeros(count, bool)
    views = [np.zeros((0, 3), np.float32) for _ in range(count)]
    rng = np.random.default_rng(0)
    for image in model.images.values():
        if not image.has_pose:
            continue
        k = int(Path(image.name).stem)
        world_to_camera = np.eye(4)
        world_to_camera[:3] = image.cam_from_world().matrix()
        poses[k] = np.linalg.inv(world_to_camera)
        registered[k] = True
        observed = [(p.xy, p.point3D_id) for p in image.points2D if p.has_point3D()]
        if not observed:
            continue
        if len(observed) > POINTS_PER_VIEW:
            observed = [observed[i] for i in rng.choice(len(observed), POINTS_PER_VIEW, replace=False)]
        xyz = np.array([model.points3D[pid].xyz for _, pid in observed])
        z = (xyz @ world_to_camera[:3, :3].T + world_to_camera[:3, 3])[:, 2]
        uv = np.array([xy for xy, _ in observed]) - 0.5  # COLMAP's pixel centres are at +0.5
        views[k] = np.column_stack([uv, z]).astype(np.float32)[z > 0]
    params = [float(v) for v in next(iter(model.cameras.values())).params]
    return SfmResult(poses, registered, views, float(model.compute_mean_reprojection_error()), models, params)


@contextlib.contextmanager
def _quiet_native_logs():
    """COLMAP's C++ log (glog) below errors stays off the user's terminal while this block runs (reefmap reports
    what matters); the process's stderr itself is left alone, so other threads' errors still show."""
    import pycolmap

    saved = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = int(pycolmap.logging.Level.ERROR.value)
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = saved
