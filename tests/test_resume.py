"""A run killed with SIGKILL and started again with the same command finishes with the outputs of an uninterrupted
run; other settings start over."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import write_video
from reefmap.mapping.cloud import read_ply


def _command(video, out, tiny_weights, *extra):
    return [sys.executable, "-m", "reefmap", "process", str(video), "--out", str(out), "-q", "--fps", "30",
            "--mapping", "learned", "--batch-size", "2", "--checkpoint-s", "0.2", "--seg-weights", str(tiny_weights["segmentation"]),
            "--depth-weights", str(tiny_weights["depth_pose"]), *extra]


def _kill_after_first_checkpoint(command, out):
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600  # a guard against a hung run, not a speed check: loaded machines are slow
    while not list(out.glob(".reefmap-partial-*/.checkpoint.npz")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "summary.json").exists()


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("long") / "long.avi", n_frames=120, fps=30.0)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_outputs(long_video, tiny_weights, tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    _kill_after_first_checkpoint(_command(long_video, killed, tiny_weights), killed)
    proc = subprocess.run(_command(long_video, killed, tiny_weights), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "resumed an interrupted run" in proc.stderr
    summary = json.loads((killed / "summary.json").read_text())
    assert 0 < summary["resumed_from_frame"] < summary["frames_processed"] == 120
    assert not list(killed.glob(".reefmap-partial-*"))
    subprocess.run(_command(long_video, clean, tiny_weights), check=True, capture_output=True, timeout=300)
    for name in ("cover.csv", "cover_segments.csv", "trajectory.csv", "points.csv"):
        assert (killed / name).read_text() == (clean / name).read_text(), name
    a, b = read_ply(killed / "cloud.ply"), read_ply(clean / "cloud.ply")
    for field in ("points", "colours", "labels", "confidence", "n_views"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_other_settings_start_over(long_video, tiny_weights, tmp_path):
    out = tmp_path / "run"
    _kill_after_first_checkpoint(_command(long_video, out, tiny_weights), out)
    stale = list(out.glob(".reefmap-partial-*"))
    proc = subprocess.run(_command(long_video, out, tiny_weights, "--voxel-size", "0.05"), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["resumed_from_frame"] is None
    assert stale and not any(p.exists() for p in stale)


@pytest.mark.slow
def test_a_killed_sfm_run_resumes_on_the_camera_path_it_had_found(synthetic_transect, tmp_path):
    out = tmp_path / "sfm"
    command = [sys.executable, "-m", "reefmap", "process", str(synthetic_transect / "video.mp4"), "--out", str(out),
               "-q", "--fps", "5", "--mapping", "sfm", "--sfm-fps", "2.5", "--batch-size", "2", "--checkpoint-s",
               "0.2", "--camera", str(synthetic_transect / "camera.json")]
    _kill_after_first_checkpoint(command, out)
    with np.load(next(out.glob(".reefmap-partial-*/.camera_path.npz"))) as saved:
        found = json.loads(str(saved["record"]))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_frame"] > 0
    assert summary["mapping"]["seconds"] == found["seconds"]  # the path was read back, not found again
    assert summary["mapping"]["registered_keyframes"] == found["keyframes"]
