import json

import numpy as np
import pytest

from reefmap.geometry.scale import scale_from_altitude, scale_from_tape, tape_span


def test_tape_span_of_a_straight_tape_in_any_direction():
    t = np.linspace(0, 4.0, 2001)
    direction = np.array([np.cos(0.3), np.sin(0.3)])
    points = t[:, None] * direction + np.random.default_rng(0).normal(0, 0.005, (len(t), 2))
    span, spread = tape_span(points)
    assert span == pytest.approx(4.0, rel=0.002)
    assert 0 < spread < 0.1


def test_scale_from_the_tape_and_the_fallback_to_the_camera_path():
    t = np.linspace(0, 2.0, 1001)  # a tape of 20 m mapped at a tenth of its size
    local = np.stack([t, np.zeros_like(t), np.zeros_like(t)], axis=1)
    scale, warning = scale_from_tape(local, np.ones(len(t), bool), 20.0, np.zeros((2, 2)), voxel_size=0.002)
    assert warning is None and scale.factor == pytest.approx(10.0, rel=0.002)
    assert scale.uncertainty_percent < 2
    path = np.stack([np.linspace(-0.1, 1.9, 50), np.zeros(50)], axis=1)
    scale, warning = scale_from_tape(local, np.zeros(len(t), bool), 20.0, path, voxel_size=0.002)
    assert scale.factor == pytest.approx(10.0) and "tape was not found" in warning


def test_a_tape_seen_over_part_of_the_transect_is_not_taken_for_the_whole_tape():
    t = np.linspace(0, 0.9, 500)  # the model found the tape over 0.9 of the 2.0 map units the camera swam along it
    local = np.stack([t, np.zeros_like(t), np.zeros_like(t)], axis=1)
    path = np.stack([np.linspace(0.0, 2.0, 50), np.zeros(50)], axis=1)
    scale, warning = scale_from_tape(local, np.ones(len(t), bool), 20.0, path, voxel_size=0.002)
    assert scale.factor == pytest.approx(10.0) and "seen over only 45 %" in warning
    assert scale.source.startswith("camera path")
    whole = np.stack([np.linspace(0, 1.6, 800), np.zeros(800), np.zeros(800)], axis=1)  # 80 %: taken as the tape
    scale, warning = scale_from_tape(whole, np.ones(800, bool), 20.0, path, voxel_size=0.002)
    assert warning is None and scale.factor == pytest.approx(12.5, rel=0.002)


def test_scale_from_altitude():
    heights = np.random.default_rng(1).normal(0.75, 0.05, 400)
    scale = scale_from_altitude(heights, 1.5)
    assert scale.factor == pytest.approx(2.0, rel=0.02) and 5 < scale.uncertainty_percent < 9


def test_tape_length_scales_the_map_and_its_areas(oracle_run, synthetic_transect, tmp_path):
    import reefmap

    truth = json.loads((synthetic_transect / "truth.json").read_text())
    tape_m = truth["settings"]["length_m"]
    run = tmp_path / "doubled"
    result = reefmap.process(synthetic_transect / "video.mp4", run, fps=5, oracle=str(synthetic_transect), quiet=True,
                             tape_length_m=2 * tape_m)  # as if the tape were twice as long as the rendered one
    scale = result.summary.scale
    assert scale["factor"] == pytest.approx(2.0, rel=0.03) and scale["source"].startswith("transect tape")
    before = json.loads((oracle_run / "summary.json").read_text())
    area = {r["class_name"]: r["planar_area"] for r in before["cover"]}
    for row in result.summary.cover:
        if row["planar_area"] > 0.05:
            assert row["planar_area"] == pytest.approx(area[row["class_name"]] * scale["factor"] ** 2, rel=0.05)
    assert result.summary.rugosity["overall"] == pytest.approx(before["rugosity"]["overall"], rel=0.02)


def test_two_scale_references_are_refused(monkeypatch, capsys, tmp_path, synthetic_transect):
    from test_process import run_cli

    code, _, err = run_cli(monkeypatch, capsys, "process", synthetic_transect / "video.mp4", "--oracle",
                           synthetic_transect, "--tape-length-m", "3", "--altitude-m", "1.5", "-o", tmp_path / "x")
    assert code == 2 and "one scale reference" in err


def test_tape_straightness_measures_the_spread_about_the_line():
    from reefmap.geometry.scale import tape_straightness

    along = np.linspace(0.0, 10.0, 1001)
    straight = np.column_stack([along, np.zeros_like(along)])
    rms, span = tape_straightness(straight)
    assert rms == pytest.approx(0.0, abs=1e-9) and span == pytest.approx(10.0, rel=0.01)
    wavy = np.column_stack([along, 0.1 * np.cos(along * 2 * np.pi / 5)])  # 10 cm waves, no tilt: RMS 0.1 / sqrt(2)
    rms, _ = tape_straightness(wavy)
    assert rms == pytest.approx(100 * 0.1 / np.sqrt(2) / 10.0, rel=0.03)
    assert tape_straightness(straight[:10]) is None
