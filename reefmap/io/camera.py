"""Camera profiles: intrinsics and lens distortion, scaled to the processing size, and undistortion."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from reefmap.errors import ReefmapError, UsageError

DISTORTION_KEYS = {"pinhole": (), "radial": ("k1", "k2"), "opencv": ("k1", "k2", "p1", "p2", "k3")}
GENERIC_HFOV_DEG = 70.0
GENERIC_PREFIX = "generic_hfov"  # names of the generic field-of-view cameras
_DETECT_BYTES = 4 << 20


@dataclass(frozen=True)
class CameraProfile:
    """Pinhole intrinsics in pixels for `image_size` (width, height), plus lens distortion."""

    name: str
    image_size: tuple[int, int]
    fx: float
    fy: float
    cx: float
    cy: float
    model: str = "pinhole"
    distortion: dict[str, float] = field(default_factory=dict)
    match: tuple[str, ...] = ()

    def __post_init__(self):
        if self.model not in DISTORTION_KEYS:
            raise ReefmapError(
                f"camera profile '{self.name}': unknown model '{self.model}'; use one of {sorted(DISTORTION_KEYS)}"
            )
        missing = [k for k in DISTORTION_KEYS[self.model] if k not in self.distortion]
        if missing:
            raise ReefmapError(f"camera profile '{self.name}': model '{self.model}' needs {missing}")

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def dist_coeffs(self) -> np.ndarray:
        """OpenCV distortion vector (k1, k2, p1, p2, k3)."""
        d = self.distortion
        return np.array([d.get(k, 0.0) for k in ("k1", "k2", "p1", "p2", "k3")], dtype=np.float64)

    @property
    def is_distorted(self) -> bool:
        return bool(np.any(self.dist_coeffs != 0.0))

    def scaled_to(self, width: int, height: int) -> "CameraProfile":
        """The same camera for an image resized from `image_size` to (width, height)."""
        sx, sy = width / self.image_size[0], height / self.image_size[1]
        return replace(
            self,
            image_size=(width, height),
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
        )

    @classmethod
    def from_dict(cls, data: dict) -> "CameraProfile":
        """The inverse of `to_dict` (also reads the optional `match` list of shipped profiles)."""
        return cls(
            name=str(data["name"]),
            image_size=(int(data["image_size"][0]), int(data["image_size"][1])),
            fx=float(data["fx"]),
            fy=float(data["fy"]),
            cx=float(data["cx"]),
            cy=float(data["cy"]),
            model=str(data.get("model", "pinhole")),
            distortion={k: float(v) for k, v in data.get("distortion", {}).items()},
            match=tuple(data.get("match", ())),
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "image_size": list(self.image_size),
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "distortion": dict(self.distortion),
        }


def generic_profile(width: int, height: int, hfov_deg: float = GENERIC_HFOV_DEG) -> CameraProfile:
    """A distortion-free camera whose focal length follows from a horizontal field of view."""
    if not 10.0 <= hfov_deg <= 170.0:
        raise UsageError(f"--hfov {hfov_deg} is not a field of view; give degrees between 10 and 170")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return CameraProfile(
        name=f"{GENERIC_PREFIX}{hfov_deg:g}", image_size=(width, height), fx=f, fy=f, cx=(width - 1) / 2,
        cy=(height - 1) / 2
    )


def is_generic(profile: CameraProfile) -> bool:
    """Whether the profile is the generic field-of-view guess rather than a known or calibrated camera."""
    return profile.name.startswith(GENERIC_PREFIX)


def horizontal_fov_deg(focal_px: float, width: int) -> float:
    """The horizontal field of view of a pinhole camera of focal length `focal_px` on images `width` pixels wide."""
    return math.degrees(2.0 * math.atan(width / 2.0 / focal_px))


def with_focal_length(profile: CameraProfile, focal_px: float, name: str) -> CameraProfile:
    """The same camera, renamed, with focal length `focal_px` (pixels at its own image size) on both axes."""
    return replace(profile, name=name, fx=float(focal_px), fy=float(focal_px))


def load_profile(path: str | Path) -> CameraProfile:
    """Read a camera profile JSON (name, image_size, fx, fy, cx, cy, model, distortion)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return CameraProfile.from_dict({"name": path.stem} | data)
    except OSError as exc:
        raise ReefmapError(f"cannot read camera profile {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ReefmapError(
            f"camera profile {path} is malformed ({exc!r}): it needs image_size, fx, fy, cx, cy"
        ) from None


def shipped_profiles() -> dict[str, CameraProfile]:
    """The camera profiles that come with reefmap, by name."""
    folder = resources.files("reefmap") / "data" / "cameras"
    profiles = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            with resources.as_file(entry) as path:
                profile = load_profile(path)
            profiles[profile.name] = profile
    return profiles


def user_cameras_dir() -> Path:
    """Where `reefmap calibrate` writes profiles: $REEFMAP_CAMERAS, else ~/.local/share/reefmap/cameras."""
    if os.environ.get("REEFMAP_CAMERAS"):
        return Path(os.environ["REEFMAP_CAMERAS"])
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "reefmap" / "cameras"


def known_profiles() -> dict[str, CameraProfile]:
    """Shipped profiles and the user's own (`reefmap calibrate`), by name; the user's win a clash of names."""
    profiles = shipped_profiles()
    folder = user_cameras_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            profile = load_profile(path)
            profiles[profile.name] = profile
    return profiles


def detect_profile(video_path: str | Path) -> CameraProfile | None:
    """The shipped profile whose camera model string occurs in the file's first megabytes, if any."""
    with open(video_path, "rb") as f:
        head = f.read(_DETECT_BYTES)
    for profile in shipped_profiles().values():
        if any(token.encode() in head for token in profile.match):
            return profile
    return None


def resolve_profile(camera: str, video_path: str | Path, width: int, height: int, hfov_deg: float) -> CameraProfile:
    """Pick the camera for a video: `auto`, `generic`, a shipped or calibrated profile name, or a JSON path.

    `auto` uses a shipped profile when the file names its camera and the aspect ratio fits,
    otherwise the generic field-of-view camera. Returns the profile in the video's native size.
    """
    if camera == "generic":
        return generic_profile(width, height, hfov_deg)
    if camera == "auto":
        profile = detect_profile(video_path)
        if profile is not None and _same_aspect(profile.image_size, (width, height)):
            return profile.scaled_to(width, height)
        return generic_profile(width, height, hfov_deg)
    profiles = known_profiles()
    if camera in profiles:
        profile = profiles[camera]
    elif Path(camera).suffix.lower() == ".json":
        profile = load_profile(camera)
    else:
        raise UsageError(
            f"unknown camera '{camera}': use auto, generic, a profile JSON file, one of {sorted(profiles)}, or "
            "make a profile with `reefmap calibrate VIDEO --name NAME`"
        )
    if not _same_aspect(profile.image_size, (width, height)):
        raise UsageError(
            f"camera profile '{profile.name}' is for {profile.image_size[0]}x{profile.image_size[1]} but the video is "
            f"{width}x{height} (another aspect ratio); use --camera generic or a profile for this video mode"
        )
    return profile.scaled_to(width, height)


def _same_aspect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] / a[1] - b[0] / b[1]) < 0.01


class Undistorter:
    """Maps distorted frames of `profile` to a pinhole camera of the same size (valid pixels only)."""

    def __init__(self, profile: CameraProfile):
        w, h = profile.image_size
        if profile.is_distorted:
            new_K, _ = cv2.getOptimalNewCameraMatrix(profile.K, profile.dist_coeffs, (w, h), 0.0, (w, h))
            self.map_x, self.map_y = cv2.initUndistortRectifyMap(
                profile.K, profile.dist_coeffs, None, new_K, (w, h), cv2.CV_16SC2
            )
        else:
            new_K, self.map_x, self.map_y = profile.K, None, None
        self.output = CameraProfile(
            name=profile.name + ("_undistorted" if profile.is_distorted else ""),
            image_size=(w, h),
            fx=float(new_K[0, 0]),
            fy=float(new_K[1, 1]),
            cx=float(new_K[0, 2]),
            cy=float(new_K[1, 2]),
        )

    def __call__(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """(H, W, ...) distorted image -> the same seen by the pinhole camera; INTER_NEAREST for labels and depth."""
        if self.map_x is None:
            return image
        return cv2.remap(image, self.map_x, self.map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)
