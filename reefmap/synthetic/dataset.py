"""`reefmap synth`: render a transect video of a procedural reef and write its exact ground truth beside it."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from reefmap.config import SynthSettings
from reefmap.errors import UsageError
from reefmap.io.camera import CameraProfile, generic_profile
from reefmap.io.files import StagedOutputs, write_json, write_poses_csv
from reefmap.synthetic.path import PathSettings, diver_path
from reefmap.synthetic.render import Renderer, WaterSettings
from reefmap.synthetic.scene import NAMED_SCENES, Scene, build_scene
from reefmap.synthetic.texture import class_textures
from reefmap.synthetic.truth import close_seen, mark_seen, top_down_truth, true_cover, truth_summary, write_true_cover_csv
from reefmap.taxonomy import default_taxonomy

FORMAT = "reefmap-synth/1"
DEPTH_SCALE = 0.001  # metres per unit in the 16-bit depth PNGs
GOPRO_LIKE_DISTORTION = {"k1": 0.36, "k2": 0.25}
PRESETS = {name: {} for name in NAMED_SCENES} | {"turbid": {"turbidity": 2.5}}


def scene_camera(settings: SynthSettings) -> CameraProfile:
    """The rendering camera: pinhole from the field of view, with GoPro-like radial distortion if asked."""
    w, h = settings.size
    camera = generic_profile(w, h, settings.hfov_deg)
    if settings.distortion:
        camera = replace(camera, name="synthetic_radial", model="radial", distortion=dict(GOPRO_LIKE_DISTORTION))
    return replace(camera, name="synthetic" if not settings.distortion else camera.name)


def _check(settings: SynthSettings) -> None:
    if settings.scene not in PRESETS:
        raise UsageError(f"unknown scene '{settings.scene}'; choose one of {sorted(PRESETS)}")
    if not 1.0 <= settings.length_m <= 200.0:
        raise UsageError(f"--length-m {settings.length_m:g} must be between 1 and 200 metres")
    if not (settings.fps > 0 and settings.size[0] >= 32 and settings.size[1] >= 32 and settings.motion_blur >= 1):
        raise UsageError("--fps must be positive, --size at least 32x32 and --motion-blur at least 1")
    if not 0.0 <= settings.nadir_deg <= 75.0:
        raise UsageError(f"--nadir-deg {settings.nadir_deg:g} must be between 0 (straight down) and 75")


def _blur_poses(poses: np.ndarray, i: int, count: int) -> list[np.ndarray]:
    """Poses between frame i and the next, over half a frame interval, for motion blur."""
    if count <= 1 or i + 1 >= len(poses):
        return []
    out = []
    for k in range(1, count):
        a = 0.5 * k / count
        blend = (1 - a) * poses[i] + a * poses[i + 1]
        u, _, vt = np.linalg.svd(blend[:3, :3])
        blend[:3, :3] = u @ vt
        out.append(blend)
    return out


def synthesize(out_dir: str | Path, settings: SynthSettings, quiet: bool = False) -> dict:
    """Render the transect into `out_dir`; returns the manifest written as `truth.json`."""
    _check(settings)
    preset = PRESETS[settings.scene]
    turbidity = preset.get("turbidity", settings.turbidity)
    scene_settings = NAMED_SCENES.get(settings.scene, NAMED_SCENES["mixed"])
    scene_settings = replace(scene_settings, length_m=settings.length_m)
    rng = np.random.default_rng(settings.seed)
    scene = build_scene(scene_settings, settings.seed)
    path = PathSettings(altitude_m=settings.altitude_m, speed_mps=settings.speed_mps, nadir_deg=settings.nadir_deg)
    times, poses = diver_path(path, settings.length_m, settings.fps, scene.ground_height, rng)
    camera = scene_camera(settings)
    taxonomy = default_taxonomy()
    textures = class_textures(settings.texture_photos, taxonomy, settings.texture_label_map,
                              settings.texture_photo_width_m, settings.seed) if settings.texture_photos else None
    renderer = Renderer(scene, camera, WaterSettings(turbidity=turbidity), settings.seed, textures)
    cloud_classes = np.array([c.id for c in taxonomy.classes if "ignore_in_cloud" not in c.roles])
    truth = top_down_truth(scene, cloud_classes, (-3.0, settings.length_m + 3.0),
                           (-scene_settings.half_width_m, scene_settings.half_width_m), settings.truth_cell_m)

    outputs = StagedOutputs(out_dir)
    try:
        (outputs.path("depth")).mkdir()
        (outputs.path("labels")).mkdir()
        w, h = settings.size
        writer = cv2.VideoWriter(str(outputs.path("video.mp4")), cv2.VideoWriter_fourcc(*"mp4v"), settings.fps, (w, h))
        if not writer.isOpened():
            raise UsageError("OpenCV cannot write MP4 (mp4v) video on this machine; install opencv-python-headless")

        def render(i):
            return renderer.render(poses[i], float(times[i]), i, _blur_poses(poses, i, settings.motion_blur))

        with ThreadPoolExecutor(max(1, settings.workers)) as pool, \
                tqdm(total=len(times), unit="frame", desc="rendering", disable=quiet, file=sys.stderr) as bar:
            chunk = 2 * max(1, settings.workers)
            for start in range(0, len(times), chunk):
                indices = range(start, min(start + chunk, len(times)))
                for i, frame in zip(indices, pool.map(render, indices)):
                    writer.write(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
                    depth_mm = np.clip(np.rint(frame.depth_m / DEPTH_SCALE), 0, 65535).astype(np.uint16)
                    cv2.imwrite(str(outputs.path(f"depth/{i:06d}.png")), depth_mm)
                    cv2.imwrite(str(outputs.path(f"labels/{i:06d}.png")), frame.labels)
                    seabed = np.isin(frame.labels, cloud_classes)[::2, ::2] & (frame.depth_m[::2, ::2] > 0)
                    cam_points = renderer.rays_cam[::2, ::2][seabed] * frame.depth_m[::2, ::2][seabed][:, None]
                    mark_seen(truth, cam_points @ poses[i][:3, :3].T[:, :2] + poses[i][:2, 3])
                    if i == len(times) // 2:
                        _write_preview(frame, taxonomy.colour_lut(), outputs.path("preview.png"))
                    bar.update(1)
        writer.release()
        close_seen(truth)
        summary = truth_summary(truth, taxonomy)
        write_poses_csv(times, poses, outputs.path("poses.csv"))
        write_true_cover_csv(true_cover(truth, taxonomy), truth.cell_m, outputs.path("cover_true.csv"))
        write_mesh_ply(scene, outputs.path("mesh.ply"))
        cv2.imwrite(str(outputs.path("truth_labels.png")), truth.labels.astype(np.uint8))
        cv2.imwrite(str(outputs.path("truth_seen.png")), truth.seen.astype(np.uint8) * 255)
        cv2.imwrite(str(outputs.path("truth_upness.png")), np.rint(truth.upness * 65535).astype(np.uint16))
        cv2.imwrite(str(outputs.path("truth_ortho_labels.png")),
                    taxonomy.colour_lut()[np.where(truth.seen, truth.labels, 0)][::-1, :, ::-1])
        manifest = {
            "format": FORMAT,
            "settings": asdict(settings) | {"turbidity": turbidity},
            "scene_settings": asdict(scene_settings),
            "texture": textures.describe() if textures else None,
            "video": "video.mp4",
            "frames": len(times),
            "fps": settings.fps,
            "camera": camera.to_dict(),
            "camera_profile": "camera.json",
            "poses": "poses.csv",
            "depth": "depth/{:06d}.png",
            "depth_scale_m": DEPTH_SCALE,
            "labels": "labels/{:06d}.png",
            "mesh": "mesh.ply",
            "truth_grid": {"labels": "truth_labels.png", "seen": "truth_seen.png", "upness": "truth_upness.png",
                           "cell_m": truth.cell_m,
                           "origin_xy": list(truth.origin_xy),
                           "layout": "row = y (left of the tape), column = x (along the tape), row 0 at the smallest y"},
            "tape_length_m": settings.length_m,
            "path_length_m": float(np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1).sum()),
            "truth": summary,
        }
        write_json(camera.to_dict(), outputs.path("camera.json"))
        write_json(manifest, outputs.path("truth.json"))
        outputs.commit(last="truth.json")
    except BaseException:
        outputs.discard()
        raise
    return manifest


def _write_preview(frame, lut: np.ndarray, path: Path) -> None:
    """Frame | depth | labels side by side."""
    depth = frame.depth_m
    valid = depth > 0
    scaled = np.zeros(depth.shape, np.uint8)
    if valid.any():
        lo, hi = np.percentile(depth[valid], [1, 99])
        scaled[valid] = np.clip(255 * (1 - (depth[valid] - lo) / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)
    depth_rgb = cv2.applyColorMap(scaled, cv2.COLORMAP_VIRIDIS)
    depth_rgb[~valid] = 0
    labels_bgr = lut[frame.labels][..., ::-1]
    cv2.imwrite(str(path), np.hstack([frame.rgb[..., ::-1], depth_rgb, labels_bgr]))


def write_mesh_ply(scene: Scene, path: Path) -> None:
    """Binary PLY: vertices with colour, faces with a `label` (class id) property."""
    v = np.zeros(len(scene.vertices), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                             ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    v["x"], v["y"], v["z"] = scene.vertices.T
    colours = np.clip(np.rint(scene.colours * 255), 0, 255).astype(np.uint8)
    v["red"], v["green"], v["blue"] = colours.T
    f = np.zeros(len(scene.triangles), dtype=[("n", "u1"), ("v", "<i4", (3,)), ("label", "<i4")])
    f["n"], f["v"], f["label"] = 3, scene.triangles, scene.labels
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment reefmap synthetic reef, label = Coralscapes class id\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(f)}\nproperty list uchar int vertex_indices\nproperty int label\nend_header\n"
    )
    with open(path, "wb") as out:
        out.write(header.encode("ascii"))
        out.write(v.tobytes())
        out.write(f.tobytes())


def read_mesh_ply(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V, 3) vertices, (T, 3) triangles and (T,) labels from a file written by `write_mesh_ply`."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    n_v = int(next(line.split()[2] for line in header if line.startswith("element vertex")))
    n_f = int(next(line.split()[2] for line in header if line.startswith("element face")))
    v = np.frombuffer(data, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"),
                                   ("blue", "u1")], count=n_v, offset=end)
    f = np.frombuffer(data, dtype=[("n", "u1"), ("v", "<i4", (3,)), ("label", "<i4")], count=n_f,
                      offset=end + v.nbytes)
    return np.stack([v["x"], v["y"], v["z"]], 1), f["v"].copy(), f["label"].copy()
