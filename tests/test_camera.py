import json

import cv2
import numpy as np
import pytest

from reefmap.errors import ReefmapError, UsageError
from reefmap.io.camera import CameraProfile, Undistorter, detect_profile, generic_profile, load_profile, resolve_profile


def test_generic_profile_from_field_of_view():
    p = generic_profile(640, 360, hfov_deg=90.0)
    assert p.fx == pytest.approx(320.0) and p.fy == pytest.approx(320.0)
    assert (p.cx, p.cy) == (319.5, 179.5)
    with pytest.raises(UsageError):
        generic_profile(640, 360, hfov_deg=200)


def test_scaling_keeps_the_field_of_view():
    p = CameraProfile("c", (1920, 1080), 1243.6, 1243.6, 960.0, 540.0, "radial", {"k1": 0.36, "k2": 0.25})
    s = p.scaled_to(640, 360)
    assert s.fx == pytest.approx(1243.6 / 3)
    assert (s.cx + 0.5) * 3 == pytest.approx(960.5)
    assert s.distortion == p.distortion


def test_undistorter_straightens_distorted_points():
    p = CameraProfile("c", (640, 360), 414.5, 414.5, 320.0, 180.0, "radial", {"k1": 0.36, "k2": 0.25})
    und = Undistorter(p)
    out = und.output
    # a 3D point seen through the distorted lens lands, after undistortion, where the pinhole output projects it
    point = np.array([[0.3, -0.15, 1.0]])
    distorted, _ = cv2.projectPoints(point, np.zeros(3), np.zeros(3), p.K, p.dist_coeffs)
    image = np.zeros((360, 640, 3), np.uint8)
    u, v = np.rint(distorted.ravel()).astype(int)
    image[v - 1:v + 2, u - 1:u + 2] = 255
    ys, xs = np.nonzero(und(image)[..., 0] > 60)
    expected = out.K @ point[0]
    assert abs(xs.mean() - expected[0] / expected[2]) < 1.5
    assert abs(ys.mean() - expected[1] / expected[2]) < 1.5


def test_profile_json_errors(tmp_path):
    bad = tmp_path / "cam.json"
    bad.write_text(json.dumps({"name": "x", "fx": 1}))
    with pytest.raises(ReefmapError, match="malformed"):
        load_profile(bad)
    bad.write_text(json.dumps({"image_size": [10, 10], "fx": 1, "fy": 1, "cx": 1, "cy": 1, "model": "fisheye9"}))
    with pytest.raises(ReefmapError, match="unknown model"):
        load_profile(bad)


def test_real_gopro_clip_is_detected(real_clip):
    assert detect_profile(real_clip).name == "gopro_hero10_linear"
    profile = resolve_profile("auto", real_clip, 1280, 720, 70.0)
    assert profile.fx == pytest.approx(1243.628 * 2 / 3)


def test_wrong_aspect_profile_is_refused(real_clip):
    with pytest.raises(UsageError, match="aspect"):
        resolve_profile("gopro_hero10_linear", real_clip, 1440, 1080, 70.0)
    with pytest.raises(UsageError, match="unknown camera"):
        resolve_profile("hero99", real_clip, 1920, 1080, 70.0)
