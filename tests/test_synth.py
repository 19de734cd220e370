import json

import cv2
import numpy as np
import pytest

from reefmap.geometry.backproject import backproject
from reefmap.geometry.transforms import invert_pose, transform_points
from reefmap.io.camera import CameraProfile
from reefmap.io.files import read_poses_csv
from reefmap.report.cover import cells_per_class, planar_cover
from reefmap.synthetic.path import PathSettings, diver_path, look_rotation
from reefmap.synthetic.render import Renderer, WaterSettings
from reefmap.synthetic.scene import NAMED_SCENES, build_scene
from reefmap.synthetic.truth import top_down_truth
from reefmap.taxonomy import default_taxonomy

TAX = default_taxonomy()
CLOUD_CLASSES = np.array([c.id for c in TAX.classes if "ignore_in_cloud" not in c.roles])
SMALL = NAMED_SCENES["mixed"].__class__(length_m=6.0, half_width_m=2.5)


def test_scene_is_deterministic_per_seed_and_differs_between_seeds():
    a, b, c = build_scene(SMALL, 4), build_scene(SMALL, 4), build_scene(SMALL, 5)
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.labels, b.labels)
    assert a.vertices.shape != c.vertices.shape or not np.array_equal(a.vertices, c.vertices)
    assert {5, 15, 35} <= set(a.labels.tolist())  # sand, tape, urchins


def test_look_rotation_points_forward_and_down():
    R = look_rotation(40.0)
    forward = R[:, 2]
    assert forward[0] == pytest.approx(np.sin(np.deg2rad(40)))
    assert forward[2] == pytest.approx(-np.cos(np.deg2rad(40)))
    assert np.linalg.det(R) == pytest.approx(1.0)


def _warp_error(frame_i, frame_j, camera, relative, offset=(0.0, 0.0, 0.0)):
    """Per-pixel colour difference between frame j and frame i sampled where j's true 3D points land in i."""
    points = backproject(frame_j.depth_m, camera.K).reshape(-1, 3).astype(np.float64) + offset
    moved = transform_points(relative, points)
    uv = moved[:, :2] / moved[:, 2:3] * [camera.fx, camera.fy] + [camera.cx, camera.cy]
    h, w = frame_j.depth_m.shape
    map_x, map_y = (uv[:, k].reshape(h, w).astype(np.float32) for k in (0, 1))
    warped = cv2.remap(frame_i.rgb, map_x, map_y, cv2.INTER_LINEAR).reshape(-1, 3).astype(float)
    depth_at = cv2.remap(frame_i.depth_m, map_x, map_y, cv2.INTER_NEAREST).ravel()
    inside = (frame_j.depth_m.ravel() > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] < h - 1)
    visible = inside & (np.abs(depth_at - moved[:, 2]) < 0.02)  # not occluded in frame i
    return np.abs(warped - frame_j.rgb.reshape(-1, 3)).mean(axis=1), visible


def test_warping_with_true_depth_and_poses_reproduces_the_next_frame():
    scene = build_scene(SMALL, 2)
    times, poses = diver_path(PathSettings(), 6.0, 10.0, scene.ground_height, np.random.default_rng(2))
    camera = CameraProfile("pin", (320, 180), 200.0, 200.0, 159.5, 89.5)
    # image-space effects (vignetting, noise) and moving caustics are off: the scene itself must agree
    renderer = Renderer(scene, camera, WaterSettings(caustics=0.0, noise_sigma=0.0, vignetting=0.0), seed=2)
    i, j = 20, 22
    a, b = renderer.render(poses[i], times[i], i), renderer.render(poses[j], times[j], j)
    relative = invert_pose(poses[i]) @ poses[j]
    error, visible = _warp_error(a, b, camera, relative)
    assert visible.mean() > 0.6
    # grey levels of 255; what remains is resampling of texture finer than a pixel (no anti-aliasing)
    assert np.median(error[visible]) < 4.0 and np.percentile(error[visible], 90) < 12.0
    # a point 5 cm off breaks the agreement, so the check can fail
    wrong, _ = _warp_error(a, b, camera, relative, offset=(0.05, 0.0, 0.0))
    assert np.median(wrong[visible]) > 3 * np.median(error[visible])


def test_true_cover_matches_a_nadir_rendering():
    scene = build_scene(SMALL, 8)
    x0, x1, y0, y1 = 1.0, 4.0, -1.0, 1.0
    truth = top_down_truth(scene, CLOUD_CLASSES, (x0, x1), (y0, y1), cell_m=0.005)
    truth.seen[:] = True
    cover = {r.class_id: r.percent for r in planar_cover(cells_per_class(truth.labels, TAX), TAX)}
    assert sum(p for p in cover.values() if p is not None) == pytest.approx(100.0)
    altitude = 80.0
    f = 400 / (y1 - y0) * altitude  # looking down, image columns run along -y and rows along -x
    camera = CameraProfile("nadir", (400, 600), f, f, 199.5, 299.5)
    pose = np.eye(4)
    pose[:3, :3] = look_rotation(0.0)
    pose[:3, 3] = ((x0 + x1) / 2, (y0 + y1) / 2, altitude)
    labels = Renderer(scene, camera, WaterSettings(), seed=0).render(pose, 0.0).labels
    rendered = {r.class_id: r.percent for r in planar_cover(cells_per_class(labels.astype(np.int32), TAX), TAX)}
    errors = [abs(cover[k] - rendered[k]) for k in cover if cover[k] is not None]
    assert max(errors) < 0.5


def test_synth_writes_consistent_ground_truth(synthetic_transect):
    manifest = json.loads((synthetic_transect / "truth.json").read_text())
    truth = manifest["truth"]
    assert sum(r["percent_cover"] for r in truth["cover"] if r["percent_cover"] is not None) == pytest.approx(100.0)
    assert 1.0 < truth["rugosity"] < 2.0
    times, poses = read_poses_csv(synthetic_transect / "poses.csv")
    assert len(times) == manifest["frames"]
    cap = cv2.VideoCapture(str(synthetic_transect / "video.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == manifest["frames"]
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (480, 270)
    depth = cv2.imread(str(synthetic_transect / "depth/000003.png"), cv2.IMREAD_UNCHANGED) * manifest["depth_scale_m"]
    labels = cv2.imread(str(synthetic_transect / "labels/000003.png"), cv2.IMREAD_UNCHANGED)
    seabed = labels != 13
    # the camera flies about 1.5 m above the seabed looking 40 degrees from straight down
    assert 1.2 < np.median(depth[seabed]) < 4.0 and (depth[~seabed] == 0).all()
    assert manifest["path_length_m"] == pytest.approx(3.0, rel=0.15)


def test_true_cover_is_computed_independently_and_agrees_with_the_measurement_on_a_hand_made_raster():
    """Truth counts cells itself (sharing no code with report/); on a raster counted by hand both give the same."""
    import ast
    from pathlib import Path

    from reefmap.report.cover import cells_per_class, planar_cover
    from reefmap.synthetic.truth import TopDownTruth, true_cover
    from reefmap.taxonomy import default_taxonomy

    taxonomy = default_taxonomy()
    labels = np.array([[5, 5, 5, 17], [5, 17, 9, 17], [0, 0, 5, 5]], np.int32)  # sand 6, massive alive 3, fish 1
    seen = np.ones_like(labels, bool)
    seen[2, 3] = False  # one sand cell not filmed
    upness = np.ones(labels.shape, np.float32)
    upness[0, 3] = 0.5  # a massive coral cell sloping: twice the surface
    rows = {r.name: r for r in true_cover(TopDownTruth(labels, upness, seen, 0.1, (0.0, 0.0)), taxonomy)}
    assert rows["sand"].cells == 5 and rows["sand"].percent == pytest.approx(100 * 5 / 8)
    assert rows["massive/meandering alive"].percent == pytest.approx(100 * 3 / 8)
    assert rows["fish"].excluded and rows["fish"].percent is None and rows["fish"].cells == 1
    assert rows["massive/meandering alive"].surface_percent == pytest.approx(100 * 4 / 9)
    measured = {r.name: r.percent for r in planar_cover(cells_per_class(np.where(seen, labels, 0), taxonomy), taxonomy)}
    for name, row in rows.items():
        assert row.percent == pytest.approx(measured[name]) if row.percent is not None else measured[name] is None
    package = Path(__file__).resolve().parents[1] / "reefmap" / "synthetic"
    for module in package.glob("*.py"):
        imported = [n.module for n in ast.walk(ast.parse(module.read_text())) if isinstance(n, ast.ImportFrom)]
        assert not any((m or "").startswith("reefmap.report") for m in imported), module.name
