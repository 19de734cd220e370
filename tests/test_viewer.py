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
