"""Self-calibration of a camera from a clip: structure from motion with the focal length and radial distortion
free, written as a camera profile that `reefmap process --camera NAME` uses."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from reefmap.config import CalibrationSettings
from reefmap.errors import ReefmapError, UsageError
from reefmap.geometry.sfm import SfmSettings, reconstruct, write_images
from reefmap.io.camera import CameraProfile, user_cameras_dir
from reefmap.io.files import write_text_atomic
from reefmap.io.video import FrameSource

MODELS = {"radial": "RADIAL", "opencv": "OPENCV"}  # reefmap profile model -> COLMAP camera model
MIN_FRAMES = 10
MIN_REGISTERED = 0.7


def profile_from_colmap(name: str, model: str, params: list[float], size: tuple[int, int],
                        native_size: tuple[int, int]) -> CameraProfile:
    """A reefmap profile at `native_size` from COLMAP parameters found on frames of `size` (w, h).

    RADIAL is (f, cx, cy, k1, k2), OPENCV (fx, fy, cx, cy, k1, k2, p1, p2); COLMAP puts pixel centres at +0.5,
    reefmap (OpenCV) at 0. Distortion acts on normalised coordinates, so it does not scale with the image.
    """
    if model == "radial":
        f, cx, cy, k1, k2 = params
        fx = fy = f
        distortion = {"k1": k1, "k2": k2}
    else:
        fx, fy, cx, cy, k1, k2, p1, p2 = params
        distortion = {"k1": k1, "k2": k2, "p1": p1, "p2": p2, "k3": 0.0}
    sx, sy = native_size[0] / size[0], native_size[1] / size[1]
    return CameraProfile(name, native_size, fx * sx, fy * sy, cx * sx - 0.5, cy * sy - 0.5, model, distortion)


def calibrate(videos: Sequence[str | Path], name: str, settings: CalibrationSettings) -> dict:
    """Calibrate the camera of `videos` and write `<settings.out_dir or the user's camera folder>/<name>.json`.

    Returns a record: the profile's path, the profile, frames used and registered, reprojection error.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise UsageError(f"--name '{name}' must be letters, digits, '_', '-' or '.' (it names the profile file)")
    fps, model, out_dir, quiet = settings.fps, settings.model, settings.out_dir, settings.quiet
    if model not in MODELS:
        raise UsageError(f"--model {model} is not one of {', '.join(MODELS)}")
    source = FrameSource([Path(v) for v in videos], fps, settings.start_s, settings.end_s, settings.width,
                         camera="generic")
    native = (source.videos[0].width, source.videos[0].height)
    with tempfile.TemporaryDirectory(prefix="reefmap-calibrate-") as work:
        images = Path(work) / "images"
        frames = tqdm(source, total=len(source), unit="frame", desc="calibration frames", disable=quiet)
        count = write_images((f.image for f in frames), images)
        if count < MIN_FRAMES:
            raise UsageError(f"only {count} frames between the start and end; calibration needs at least {MIN_FRAMES}: "
                             "give a longer clip or a higher --fps")
        settings = SfmSettings(camera_model=MODELS[model], refine_intrinsics=True, max_features=8192, overlap=10,
                               threads=os.cpu_count() or 1, init_gap=max(2, min(10, round(1.6 * fps))))
        result = reconstruct(images, count, None, Path(work), settings)
    registered = int(result.registered.sum())
    if registered < MIN_REGISTERED * count:
        raise ReefmapError(f"structure from motion registered only {registered} of {count} frames; calibrate on a "
                           "clip with more texture and overlap (a slow pass over the reef, turning the camera)")
    profile = profile_from_colmap(name, model, result.camera_params, source.size, native)
    folder = Path(out_dir) if out_dir else user_cameras_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    record = {"frames": count, "registered": registered, "reprojection_error_px": result.reprojection_error_px,
              "calibrated_at_size": list(source.size), "videos": [str(Path(v).resolve()) for v in videos]}
    document = profile.to_dict() | {"source": f"reefmap calibrate: COLMAP {MODELS[model]} self-calibration on "
                                              f"{registered} frames, reprojection error "
                                              f"{result.reprojection_error_px:.2f} px", "calibration": record}
    write_text_atomic(path, json.dumps(document, indent=1))
    return {"path": str(path), "profile": profile.to_dict()} | record
