import struct

import numpy as np
import pytest

from reefmap.io.telemetry import Gravity, parse_klv, read_gravity, up_direction


def _klv(key: bytes, kind: str, size: int, repeat: int, body: bytes) -> bytes:
    return key + kind.encode() + bytes([size]) + struct.pack(">H", repeat) + body + b"\0" * (-len(body) % 4)


def test_klv_records_are_scaled_and_nested():
    grav = struct.pack(">6h", 0, 8192, 0, 0, 0, -8192)
    stream = _klv(b"STNM", "c", 7, 1, b"gravity") + _klv(b"SCAL", "s", 2, 1, struct.pack(">h", 8192)) \
        + _klv(b"GRAV", "s", 6, 2, grav)
    payload = _klv(b"DEVC", "\0", 1, len(_klv(b"STRM", "\0", 1, len(stream), stream)),
                   _klv(b"STRM", "\0", 1, len(stream), stream))
    (values,) = parse_klv(payload)
    np.testing.assert_allclose(values, [[0, 1, 0], [0, 0, -1]])


def test_up_direction_rotates_gravity_into_the_world():
    # camera 0 is the world; it looks forward-down so gravity appears along +y and +z in the camera
    down_cam = np.array([0.0, np.cos(0.4), np.sin(0.4)])
    gravity = Gravity(np.array([0.0, 0.1]), np.stack([down_cam, down_cam]))
    poses = np.tile(np.eye(4), (2, 1, 1))
    np.testing.assert_allclose(up_direction(gravity, np.array([0.0, 0.1]), poses), -down_cam)


def test_real_gopro_clip_gravity(real_clip):
    gravity = read_gravity(real_clip)
    assert len(gravity.times_s) == pytest.approx(211, abs=3)
    mean = gravity.vectors.mean(axis=0)
    pitch = np.degrees(np.arctan2(mean[2], mean[1]))
    assert 18 < pitch < 28  # the diver held the camera about 23 degrees below horizontal


def test_files_without_telemetry(tmp_path):
    from conftest import write_video

    assert read_gravity(write_video(tmp_path / "v.avi", n_frames=3)) is None
    (tmp_path / "x.mp4").write_bytes(b"\0\0\0\x08free")
    assert read_gravity(tmp_path / "x.mp4") is None
