"""The bad-input matrix: truncated and variable-frame-rate MP4, portrait and 4K video, featureless frames, a camera
that never moves, a full disk. Each either maps what it can and says what it skipped, or stops with one clear line."""

import errno
import json
import subprocess

import cv2
import numpy as np
import pytest

from conftest import frame_number, write_video
from test_process import run_cli, weights_args


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _textured(i: int, size=(160, 96)) -> np.ndarray:
    """A frame of fresh random texture (so every frame costs bytes in the file) of mean level about 30 + 3 i."""
    noise = np.random.default_rng(i).integers(-25, 26, (size[1] // 4, size[0] // 4))
    texture = cv2.resize(noise.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)[..., None]
    return np.clip(30 + 3 * i + texture, 0, 255).astype(np.uint8).repeat(3, axis=2)


def write_mp4(path, frames, fps=10.0, faststart=True):
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=2, ffmpeg_log_level="error",
                                         output_params=["-movflags", "+faststart"] if faststart else [])
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def _process(monkeypatch, capsys, tiny_weights, video, out, *extra):
    return run_cli(monkeypatch, capsys, "process", video, "--out", out, "-q", *weights_args(tiny_weights), *extra)


def test_truncated_mp4_maps_up_to_the_last_good_frame_and_says_so(monkeypatch, capsys, tiny_weights, tmp_path):
    video = write_mp4(tmp_path / "cut.mp4", [_textured(i) for i in range(60)], fps=10.0)
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.55)])
    code, _, err = _process(monkeypatch, capsys, tiny_weights, video, tmp_path / "out", "--fps", "5")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert 3 <= summary["frames_processed"] < 30
    assert any("truncated" in w for w in summary["warnings"])
    assert "reefmap: warning:" in err and "truncated" in err


def test_truncated_mp4_without_its_index_is_one_clear_error(monkeypatch, capsys, tiny_weights, tmp_path):
    video = write_mp4(tmp_path / "cut.mp4", [_textured(i) for i in range(30)], faststart=False)  # index at the end
    video.write_bytes(video.read_bytes()[:-2000])
    code, _, err = _process(monkeypatch, capsys, tiny_weights, video, tmp_path / "out")
    assert code == 1 and err.count("\n") == 1 and "reefmap: error:" in err and "cut.mp4" in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_variable_frame_rate_is_sampled_by_timestamp(tmp_path):
    from reefmap.io.video import FrameSource

    cfr = write_video(tmp_path / "cfr.avi", n_frames=60, fps=30.0)
    vfr = tmp_path / "vfr.mkv"  # keeps frames n % 5 in {0, 1}: gaps of 1/30 s and 4/30 s
    subprocess.run([_ffmpeg(), "-loglevel", "error", "-i", str(cfr), "-vf", r"select=lt(mod(n\,5)\,2)",
                    "-fps_mode", "vfr", "-c:v", "mjpeg", "-q:v", "2", str(vfr)], check=True)
    kept = np.array([n for n in range(60) if n % 5 < 2])
    frames = list(FrameSource([vfr], fps=5.0, width=None))
    assert len(frames) >= 9
    for frame in frames:
        shown = frame_number(frame.image)
        assert shown in kept
        latest_kept = kept[kept / 30.0 <= frame.time_s + 1e-3].max()
        assert shown == latest_kept or abs(shown / 30.0 - frame.time_s) < 0.5 / 5.0, (frame.time_s, shown)


@pytest.mark.parametrize("size, expected", [((352, 640), [352, 640]), ((3840, 2160), [640, 360])])
def test_portrait_and_4k_video(monkeypatch, capsys, tiny_weights, tmp_path, size, expected):
    """Default --width 640: 4K comes down to 640x360 keeping its aspect, a narrower portrait video is not upscaled."""
    video = write_video(tmp_path / "v.avi", n_frames=4, fps=4.0, size=size)
    code, _, err = _process(monkeypatch, capsys, tiny_weights, video, tmp_path / "out")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["processing_size"] == expected and summary["frames_processed"] == 4
    assert summary["inputs"][0]["width"] == size[0]


def test_black_and_open_water_frames_are_left_out_of_the_map(monkeypatch, capsys, tiny_weights, tmp_path):
    rng = np.random.default_rng(0)
    black = np.clip(rng.normal(8, 3, (96, 160, 3)), 0, 255).astype(np.uint8)
    blue = np.zeros((96, 160, 3), np.uint8)
    blue[..., 2], blue[..., 1] = np.linspace(120, 200, 96)[:, None], 90
    frames = [_textured(i) for i in range(4)] + [black, black, blue, blue] + [_textured(i) for i in range(4, 8)]
    video = write_mp4(tmp_path / "dark.mp4", frames, fps=4.0)
    code, _, err = _process(monkeypatch, capsys, tiny_weights, video, tmp_path / "out", "--fps", "4")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames_processed"] == 12
    assert summary["network_health"]["featureless_frames_skipped"] == 4
    assert any("4 of 12 frames were featureless" in w for w in summary["warnings"])
    all_black = write_mp4(tmp_path / "black.mp4", [black] * 6, fps=4.0)
    code, _, err = _process(monkeypatch, capsys, tiny_weights, all_black, tmp_path / "out2", "--fps", "4")
    assert code == 1 and err.count("\n") == 1 and "all 6 frames are featureless" in err
    assert not (tmp_path / "out2" / "summary.json").exists()


def test_a_camera_that_never_moves_is_reported(monkeypatch, capsys, tiny_weights, tmp_path):
    video = write_mp4(tmp_path / "still.mp4", [_textured(10)] * 8, fps=4.0)
    code, _, err = _process(monkeypatch, capsys, tiny_weights, video, tmp_path / "out", "--fps", "4")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["camera_path_length"] < 0.05
    assert any("barely moved" in w for w in summary["warnings"])


def test_a_full_disk_is_one_line_and_leaves_nothing_finished(monkeypatch, capsys, tiny_weights, tmp_path):
    import reefmap.run.outputs

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(reefmap.run.outputs, "write_las", full_disk)
    video = write_video(tmp_path / "v.avi", n_frames=4, fps=4.0)
    out = tmp_path / "out"
    code, _, err = _process(monkeypatch, capsys, tiny_weights, video, out, "--fps", "4")
    errors = [line for line in err.splitlines() if line.startswith("reefmap: error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err
    assert "No space left on device" in errors[0] and "free some space" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == [".reefmap.lock"]


def test_a_depth_image_that_cannot_be_written_stops_the_run(monkeypatch, capsys, tiny_weights, tmp_path):
    """OpenCV reports a failed write by returning False: that is an error, not a run with depth images missing."""
    import reefmap.mapping.fusion

    real_imwrite = cv2.imwrite
    monkeypatch.setattr(reefmap.mapping.fusion.cv2, "imwrite",
                        lambda path, image, *a: False if "/depth/" in str(path) else real_imwrite(path, image, *a))
    video = write_video(tmp_path / "v.avi", n_frames=4, fps=4.0)
    out = tmp_path / "out"
    code, _, err = _process(monkeypatch, capsys, tiny_weights, video, out, "--fps", "4", "--save-depth")
    errors = [line for line in err.splitlines() if line.startswith("reefmap: error:")]
    assert code == 1 and len(errors) == 1 and "cannot write the depth image" in errors[0], err
    assert not (out / "summary.json").exists()


def test_ffmpeg_stays_quiet_on_a_damaged_file_and_the_environment_is_left_alone(tmp_path):
    """FFmpeg's own complaints (written straight to the stderr file) do not reach the terminal beside reefmap's
    one-line error, and opening a video leaves no environment variable behind."""
    import sys

    video = write_mp4(tmp_path / "cut.mp4", [_textured(i) for i in range(30)], faststart=False)
    video.write_bytes(video.read_bytes()[:-2000])
    program = ("import os; from reefmap.io.video import open_capture; open_capture(os.environ['VIDEO']); "
               "print('OPENCV_FFMPEG_LOGLEVEL' in os.environ)")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    done = subprocess.run([sys.executable, "-c", program], env={**env, "VIDEO": str(video)}, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False" and done.stderr == ""
