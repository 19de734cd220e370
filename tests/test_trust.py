"""The trust verdict: each level of each part, and the verdict of real runs."""

import json

import numpy as np
import pytest

from reefmap.report.trust import (
    coverage_verdict, geometry_verdict, segmentation_verdict, trust_lines, trust_record, worst,
)

SFM = {"method": "sfm", "keyframes": 20, "reprojection_error_px": 0.4}
METRIC = {"source": "tape", "uncertainty_percent": 1.0}


def test_worst_level_wins():
    assert worst(["good", "check", "good"]) == "check"
    assert worst(["check", "do not use"]) == "do not use"
    assert worst([]) == "good"


@pytest.mark.parametrize("mapping, tape, scale, level", [
    ({"method": "true poses of the synthetic transect"}, None, None, "good"),
    ({**SFM, "registered_keyframes": 20}, {"points": 300, "line_rms_percent_of_span": 1.2}, METRIC, "good"),
    ({**SFM, "registered_keyframes": 20}, None, None, "check"),  # no metric scale
    ({**SFM, "registered_keyframes": 13}, None, METRIC, "check"),
    ({**SFM, "registered_keyframes": 5}, None, METRIC, "do not use"),
    ({"method": "learned"}, None, METRIC, "check"),
    ({"method": "learned"}, {"points": 300, "line_rms_percent_of_span": 8.0}, METRIC, "do not use"),
    ({**SFM, "registered_keyframes": 20}, {"points": 10, "line_rms_percent_of_span": 8.0}, METRIC, "good"),  # too few
])
def test_geometry_levels(mapping, tape, scale, level):
    verdict = geometry_verdict(mapping, tape, scale)
    assert verdict.level == level
    assert verdict.reasons and all(isinstance(r, str) and r for r in verdict.reasons)


def test_a_guessed_camera_is_checked_unless_sfm_measured_its_focal_length():
    sfm = {**SFM, "registered_keyframes": 20}
    calibrated = {**sfm, "self_calibration": {"hfov_deg": 79.6}}
    assert geometry_verdict(calibrated, None, METRIC, guessed_camera=True).level == "good"
    assert "79.6 degrees" in " ".join(geometry_verdict(calibrated, None, METRIC, guessed_camera=True).reasons)
    assert geometry_verdict(sfm, None, METRIC, guessed_camera=True).level == "check"
    assert geometry_verdict(sfm, None, METRIC, guessed_camera=False).level == "good"


def _card(grouped=None):
    card = {"training": {"kind": "synthetic transects (reefmap synth), dense labels"}, "metrics": {}}
    if grouped is not None:
        card["metrics"]["validation_points"] = {"grouped_point_accuracy": grouped, "point_accuracy": grouped - 0.1}
    return card


@pytest.mark.parametrize("card, confidence, level", [
    (None, np.array([0.2, 0.3]), "good"),  # true labels
    (_card(), np.full(100, 0.95), "do not use"),  # never scored on real imagery
    (_card(0.85), np.full(100, 0.95), "good"),
    (_card(0.7), np.full(100, 0.95), "check"),
    (_card(0.5), np.full(100, 0.95), "do not use"),
    (_card(0.85), np.r_[np.full(60, 0.9), np.full(40, 0.4)], "check"),  # 40 % low-confidence points
    (_card(0.85), np.r_[np.full(30, 0.9), np.full(70, 0.4)], "do not use"),
])
def test_segmentation_levels(card, confidence, level):
    assert segmentation_verdict(card, confidence).level == level


def test_segmentation_says_plainly_when_never_scored_on_real_imagery():
    reasons = " ".join(segmentation_verdict(_card(), np.full(10, 0.9)).reasons)
    assert "never scored on real reef imagery" in reasons and "synthetic" in reasons


@pytest.mark.parametrize("read, mapped, segments, empty, level", [
    (100, 100, 4, 0, "good"),
    (100, 70, 4, 0, "check"),
    (100, 30, 4, 0, "do not use"),
    (100, 100, 4, 1, "check"),
])
def test_coverage_levels(read, mapped, segments, empty, level):
    assert coverage_verdict(read, mapped, segments, empty).level == level


def test_record_and_terminal_lines():
    record = trust_record({"geometry": geometry_verdict({"method": "learned"}, None, METRIC),
                           "coverage": coverage_verdict(10, 10, 1, 0)})
    assert record["overall"] == "check"
    assert record["parts"]["coverage"]["level"] == "good"
    lines = trust_lines(record)
    assert lines[0] == "trust: CHECK" and "  geometry: check" in lines


def test_oracle_run_with_true_geometry_is_trusted(oracle_run):
    trust = json.loads((oracle_run / "summary.json").read_text())["trust"]
    assert trust["parts"]["geometry"]["level"] == "good"
    assert trust["parts"]["segmentation"]["level"] == "good"
    assert trust["overall"] in ("good", "check")  # coverage may miss a segment at the transect's ends
    page = (oracle_run / "report.html").read_text()
    assert 'id="trust"' in page and "Can these numbers be used?" in page
