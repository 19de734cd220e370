"""Headless snapshots, rendered in a subprocess with a timeout (a native render crash must not take pytest down)."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from reefmap.taxonomy import default_taxonomy


@pytest.fixture(scope="module")
def oracle_run(synthetic_transect, tmp_path_factory):
    import reefmap

    run = tmp_path_factory.mktemp("snap") / "run"
    reefmap.process(synthetic_transect / "video.mp4", run, fps=5, oracle=str(synthetic_transect), quiet=True)
    return run


def _snapshot(*args):
    return subprocess.run([sys.executable, "-m", "reefmap", "snapshot", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_top_view_shows_the_classes_in_their_proportions(oracle_run, tmp_path):
    out = tmp_path / "top.png"
    proc = _snapshot(oracle_run, "--out", out, "--size", "800x450")
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(out))[..., ::-1]
    assert image.shape == (450, 800, 3)
    map_pixels = image[:, 420:].reshape(-1, 3)  # right of the legend
    drawn = map_pixels[(map_pixels != 255).any(axis=1)]
    assert len(drawn) > 0.1 * len(map_pixels)
    lut = default_taxonomy().colour_lut()
    import csv
    with open(oracle_run / "cover.csv") as f:
        cover = {int(r["class_id"]): float(r["percent_cover"]) for r in csv.DictReader(f) if r["percent_cover"]}
    sand = 100.0 * np.all(drawn == lut[5], axis=1).mean()
    assert cover[5] > 40 and abs(sand - cover[5]) < 15


def test_other_views_colourings_and_plain_ply(oracle_run, tmp_path):
    for view, colour in (("oblique", "rgb"), ("side", "confidence")):
        proc = _snapshot(oracle_run, "--out", tmp_path / f"{view}.png", "--view", view, "--colour", colour,
                         "--size", "400x300")
        assert proc.returncode == 0, proc.stderr
        assert cv2.imread(str(tmp_path / f"{view}.png")).std() > 5
    proc = _snapshot(oracle_run / "cloud.ply", "--out", tmp_path / "plain.png", "--size", "400x300")
    assert proc.returncode == 0, proc.stderr


def test_snapshot_of_nothing_is_a_clear_error(tmp_path):
    proc = _snapshot(tmp_path, "--out", tmp_path / "x.png")
    assert proc.returncode == 2 and "no cloud.ply" in proc.stderr and "Traceback" not in proc.stderr


def test_viewer_without_a_display_says_so_instead_of_hanging(oracle_run):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "reefmap", "view", str(oracle_run)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 2 and "no display" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture
def xvfb_display():
    import os
    import shutil
    import time

    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (Debian package xvfb); the windowed viewer cannot be tested here")
    number = 90 + os.getpid() % 100
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    yield {**os.environ, "DISPLAY": f":{number}"}
    server.terminate()
    server.wait(timeout=10)


def test_viewer_window_keys_and_screenshot_under_xvfb(oracle_run, tmp_path, xvfb_display):
    out = tmp_path / "window.png"
    proc = subprocess.run([sys.executable, "-m", "reefmap", "view", str(oracle_run), "--keys", "O1PV+",
                           "--screenshot", str(out)], capture_output=True, text=True, timeout=120, env=xvfb_display)
    assert proc.returncode == 0, proc.stderr
    assert "1  sand (hidden)" in proc.stdout  # key 1 hid the legend's first class
    image = cv2.imread(str(out))
    assert image is not None and image.std() > 5


def test_viewer_closes_on_a_real_q_keypress(oracle_run, xvfb_display):
    import shutil
    import time

    if not shutil.which("xdotool"):
        pytest.skip("xdotool is not installed; cannot type into the window")
    viewer = subprocess.Popen([sys.executable, "-m", "reefmap", "view", str(oracle_run)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=xvfb_display)
    try:
        window = ""
        for _ in range(60):
            found = subprocess.run(["xdotool", "search", "--name", "^reefmap$"], capture_output=True, text=True,
                                   env=xvfb_display)
            window = found.stdout.split()[0] if found.stdout.split() else ""
            if window:
                break
            time.sleep(0.5)
        assert window, "the viewer window never appeared"
        time.sleep(1.0)
        subprocess.run(["xdotool", "key", "--window", window, "h"], env=xvfb_display, check=True)
        subprocess.run(["xdotool", "key", "--window", window, "q"], env=xvfb_display, check=True)
        out, _ = viewer.communicate(timeout=30)
        assert viewer.returncode == 0
        assert out.decode().count("keys:") >= 2  # printed at start and again for the h key
    finally:
        if viewer.poll() is None:
            viewer.kill()


def test_snapshot_of_a_plain_pcd_from_another_tool(tmp_path):
    """A cloud with only positions (no colours, no labels), as other tools write PCD files."""
    from reefmap.runtime.o3d import open3d

    o3d = open3d()
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(0, 4, 5000), rng.uniform(-1, 1, 5000), 0.05 * rng.normal(size=5000)])
    o3d.io.write_point_cloud(str(tmp_path / "other.pcd"), o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)))
    proc = _snapshot(tmp_path / "other.pcd", "--out", tmp_path / "pcd.png", "--colour", "rgb", "--size", "400x300")
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(tmp_path / "pcd.png"))
    assert ((image != 255).any(axis=2)).mean() > 0.02
