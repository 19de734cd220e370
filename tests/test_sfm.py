"""--mapping sfm/auto and `reefmap calibrate`: structure from motion on rendered transects with a known camera path."""

import json

import numpy as np
import pytest

import reefmap
from reefmap.geometry.sfm import SfmError
from reefmap.run.trajectory import CameraPath, focal_record, sweep_sources
from test_process import run_cli

from conftest import write_video


@pytest.fixture(scope="module")
def sfm_run(synthetic_transect, tmp_path_factory):
    """`reefmap process --mapping sfm` on the rendered transect (an 80-degree camera) with the shipped networks, as a
    user without a camera profile runs it (the generic 70-degree guess), evaluated."""
    run = tmp_path_factory.mktemp("sfm") / "run"
    reefmap.process(synthetic_transect / "video.mp4", run, fps=5, mapping="sfm", sfm_fps=2.5, quiet=True,
                    camera="generic", hfov_deg=70.0)
    return run, reefmap.evaluate(run, synthetic_transect)


@pytest.mark.slow
def test_sfm_registers_every_keyframe_and_follows_the_true_path(sfm_run):
    run, scores = sfm_run
    mapping = json.loads((run / "summary.json").read_text())["mapping"]
    assert mapping["method"] == "sfm" and mapping["keyframe_step"] == 2
    assert mapping["registered_keyframes"] == mapping["keyframes"] >= 20
    assert mapping["reprojection_error_px"] < 1.5
    assert scores["trajectory"]["ate_percent_of_path"] < 1.0


def test_sfm_map_is_in_the_depth_networks_metres(sfm_run):
    _, scores = sfm_run
    assert abs(scores["trajectory"]["scale_error_percent"]) < 30


def test_sfm_self_calibrates_a_guessed_camera_and_says_so(sfm_run, synthetic_transect):
    run, _ = sfm_run
    summary = json.loads((run / "summary.json").read_text())
    calibrated = summary["mapping"]["self_calibration"]
    assert calibrated["guessed_hfov_deg"] == pytest.approx(70.0)
    assert calibrated["hfov_deg"] == pytest.approx(80.0, abs=2.0)  # the rendering camera's
    true_fx = json.loads((synthetic_transect / "camera.json").read_text())["fx"]
    assert summary["camera"]["native"]["fx"] == pytest.approx(true_fx, rel=0.04)
    assert summary["camera"]["processing"]["name"].startswith("self_calibrated_hfov")
    assert any("--camera generic was given: the focal length comes from structure from motion" in w
               for w in summary["warnings"])


def test_auto_falls_back_to_the_pose_network_where_sfm_finds_nothing(tmp_path, tiny_weights, monkeypatch, capsys):
    video = write_video(tmp_path / "flat.avi", 30, fps=10)
    settings = ["--seg-weights", tiny_weights["segmentation"], "--depth-weights", tiny_weights["depth_pose"], "-q"]
    code, _, err = run_cli(monkeypatch, capsys, "process", video, "--out", tmp_path / "auto", "--mapping", "auto",
                           *settings)
    assert code == 0, err
    assert "pose network instead (--mapping auto)" in err
    assert "no camera profile matched this video: a generic 70-degree field of view is assumed" in err
    summary = json.loads((tmp_path / "auto" / "summary.json").read_text())
    assert summary["mapping"]["requested"] == "auto" and summary["mapping"]["method"].startswith("pose network")
    code, _, err = run_cli(monkeypatch, capsys, "process", video, "--out", tmp_path / "sfm", "--mapping", "sfm",
                           *settings)
    assert code == 1 and err.count("\n") == 1 and "try --mapping auto" in err
    assert not (tmp_path / "sfm" / "summary.json").exists()


def test_mapping_and_sfm_fps_are_checked(tmp_path, synthetic_transect, monkeypatch, capsys):
    video = synthetic_transect / "video.mp4"
    code, _, err = run_cli(monkeypatch, capsys, "process", video, "--out", tmp_path / "a", "--mapping", "colmap")
    assert code == 2 and "--mapping" in err
    code, _, err = run_cli(monkeypatch, capsys, "process", video, "--out", tmp_path / "b", "--mapping", "sfm",
                           "--sfm-fps", "0")
    assert code == 2 and "--sfm-fps" in err


def test_focal_record_reports_the_field_of_view_and_refuses_an_unbelievable_focal_length():
    record = focal_record(320.0, 240.0, 480)
    assert record["guessed_hfov_deg"] == pytest.approx(73.74, abs=0.01) and record["hfov_deg"] == pytest.approx(90.0)
    with pytest.raises(SfmError, match="not believable"):
        focal_record(320.0, 100.0, 480)


def test_camera_path_state_round_trips():
    views = [np.zeros((0, 3), np.float32), np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((1, 3), np.float32)]
    path = CameraPath(np.stack([np.eye(4)] * 3), views, {"method": "sfm", "keyframes": 2})
    again = CameraPath.from_state(path.state())
    np.testing.assert_array_equal(again.poses, path.poses)
    assert [v.tolist() for v in again.views] == [v.tolist() for v in views]
    assert again.record == path.record


@pytest.fixture(scope="module")
def distorted_transect(tmp_path_factory):
    """A short transect rendered through GoPro-like radial distortion, with a nearer and more tilted view."""
    from reefmap.synthetic.dataset import SynthSettings, synthesize

    out = tmp_path_factory.mktemp("distorted") / "transect"
    synthesize(out, SynthSettings(seed=5, length_m=3.0, fps=5.0, size=(480, 270), distortion=True, nadir_deg=25.0,
                                  altitude_m=1.2), quiet=True)
    return out


@pytest.mark.slow
def test_calibrate_finds_the_lens_and_process_uses_the_profile(distorted_transect, tmp_path, monkeypatch, capsys):
    from reefmap.io.camera import load_profile

    monkeypatch.setenv("REEFMAP_CAMERAS", str(tmp_path / "cameras"))
    code, out, err = run_cli(monkeypatch, capsys, "calibrate", distorted_transect / "video.mp4", "--name", "test_cam",
                             "--fps", "4", "--width", "480", "-q")
    assert code == 0, err
    assert "reefmap process VIDEO --camera test_cam" in out
    profile = load_profile(tmp_path / "cameras" / "test_cam.json")
    truth = load_profile(distorted_transect / "camera.json")
    assert profile.image_size == truth.image_size and profile.model == "radial"
    assert profile.fx == pytest.approx(truth.fx, rel=0.08)
    # the lens' effect at the image corner: where the true and calibrated models put a corner ray
    corner = np.array([[[truth.image_size[0] - 1.0, truth.image_size[1] - 1.0]]])
    import cv2

    ray = cv2.undistortPoints(corner, truth.K, truth.dist_coeffs, criteria=(cv2.TERM_CRITERIA_COUNT, 30, 0))
    again = cv2.projectPoints(np.array([[ray[0, 0, 0], ray[0, 0, 1], 1.0]]), np.zeros(3), np.zeros(3), profile.K,
                              profile.dist_coeffs)[0]
    assert np.linalg.norm(again[0, 0] - corner[0, 0]) < 0.02 * truth.image_size[0]
    calibration = json.loads((tmp_path / "cameras" / "test_cam.json").read_text())["calibration"]
    assert calibration["reprojection_error_px"] < 1.5
    code, _, err = run_cli(monkeypatch, capsys, "process", distorted_transect / "video.mp4", "--out", tmp_path / "run",
                           "--camera", "test_cam", "--end", "2", "-q")
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["camera"]["native"]["name"] == "test_cam"


def test_calibrate_refuses_a_bad_name_and_too_short_a_clip(synthetic_transect, tmp_path, monkeypatch, capsys):
    video = synthetic_transect / "video.mp4"
    code, _, err = run_cli(monkeypatch, capsys, "calibrate", video, "--name", "my cam/1")
    assert code == 2 and "--name" in err
    code, _, err = run_cli(monkeypatch, capsys, "calibrate", video, "--name", "cam", "--end", "1", "--out-dir", tmp_path)
    assert code == 2 and "at least 10" in err
    assert not list(tmp_path.glob("*.json"))


def test_sweep_sources_reach_for_parallax_among_registered_keyframes():
    poses = np.repeat(np.eye(4)[None], 20, axis=0)
    poses[:, 0, 3] = 0.01 * np.arange(20)  # 1 cm per frame
    registered = np.ones(20, bool)
    registered[6] = False
    path = CameraPath(poses, [np.zeros((0, 3))] * 20, registered=registered)
    keyframes = np.arange(0, 20, 2)  # 2 cm apart
    # 4 % of 0.9 m is two keyframes away; keyframe 3 (frame 6) is not registered, so the left source is keyframe 2
    assert sweep_sources(5, keyframes, path, median_depth=0.9) == [2, 7]
    assert sweep_sources(2, keyframes, path, median_depth=0.9) == [0, 4]
    assert sweep_sources(5, keyframes, path, median_depth=0.2) == [4, 6]  # near seabed: the neighbours suffice
    assert sweep_sources(5, keyframes, path, median_depth=100.0) == [1, 9]  # the farthest within 4 keyframes


def test_colmap_logs_are_quieted_without_closing_stderr(capfd):
    """While SfM runs, what other threads write to stderr still reaches the user; COLMAP's level comes back after."""
    import os

    import pycolmap

    from reefmap.geometry.sfm import _quiet_native_logs

    before = pycolmap.logging.minloglevel
    with _quiet_native_logs():
        assert pycolmap.logging.minloglevel == 2
        os.write(2, b"another thread's error\n")
    assert "another thread's error" in capfd.readouterr().err
    assert pycolmap.logging.minloglevel == before
