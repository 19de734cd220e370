import numpy as np
import pytest

from conftest import frame_number, write_video
from reefmap.errors import UsageError, VideoError
from reefmap.io.video import FrameSource, parse_time, probe_video, processing_size


@pytest.mark.parametrize("text, seconds", [("12.5", 12.5), ("1:15", 75.0), ("01:02:03.5", 3723.5), (None, None), (3, 3.0)])
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds


def test_parse_time_rejects_words():
    with pytest.raises(UsageError, match="mm:ss"):
        parse_time("ten")


def test_processing_size_keeps_aspect_and_even():
    assert processing_size(1920, 1080, 640) == (640, 360)
    assert processing_size(1920, 1080, None) == (1920, 1080)
    assert processing_size(1280, 720, 5000) == (1280, 720)


def test_sampling_by_timestamp(tmp_path):
    video = write_video(tmp_path / "v.avi", n_frames=60, fps=30.0)
    frames = list(FrameSource([video], fps=10.0, width=None))
    assert [frame_number(f.image) for f in frames] == list(range(0, 60, 3))
    np.testing.assert_allclose([f.time_s for f in frames], np.arange(20) / 10.0, atol=1e-6)
    assert len(FrameSource([video], fps=10.0, width=None)) == 20


def test_start_end_window_and_resize(tmp_path):
    video = write_video(tmp_path / "v.avi", n_frames=60, fps=30.0, size=(160, 96))
    source = FrameSource([video], fps=5.0, start_s=0.5, end_s=1.8, width=80)
    frames = list(source)
    assert [frame_number(f.image) for f in frames] == [15, 21, 27, 33, 39, 45, 51]
    assert len(source) == 7
    assert frames[0].image.shape == (48, 80, 3)
    assert source.camera.image_size == (80, 48)


def test_chapters_play_back_to_back(tmp_path):
    a = write_video(tmp_path / "GX010001.avi", n_frames=30, fps=30.0)
    b = write_video(tmp_path / "GX020001.avi", n_frames=30, fps=30.0)
    frames = list(FrameSource([a, b], fps=2.0, width=None))
    np.testing.assert_allclose([f.time_s for f in frames], [0.0, 0.5, 1.0, 1.5], atol=1e-6)
    assert [frame_number(f.image) for f in frames] == [0, 15, 0, 15]


def test_bad_videos_and_windows(tmp_path):
    video = write_video(tmp_path / "v.avi", n_frames=30, fps=30.0)
    with pytest.raises(UsageError, match="not found"):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "notes.mp4").write_text("this is not a video")
    with pytest.raises(VideoError, match="not a video|no video frames"):
        probe_video(tmp_path / "notes.mp4")
    with pytest.raises(UsageError, match="not before"):
        FrameSource([video], start_s=0.8, end_s=0.2)
    with pytest.raises(UsageError, match="past the end"):
        FrameSource([video], start_s=5.0)
    with pytest.raises(UsageError, match="positive"):
        FrameSource([video], fps=0)


def test_prefetch_keeps_order_and_raises_decoder_errors(tmp_path):
    from reefmap.io.video import prefetch

    video = write_video(tmp_path / "v.avi", n_frames=30, fps=30.0)
    frames = list(prefetch(FrameSource([video], fps=10.0, width=None), depth=2))
    assert [frame_number(f.image) for f in frames] == list(range(0, 30, 3))

    def broken():
        yield frames[0]
        raise VideoError("frame 1 cannot be decoded")

    got = []
    with pytest.raises(VideoError, match="cannot be decoded"):
        for f in prefetch(broken()):
            got.append(f)
    assert len(got) == 1
    early = prefetch(iter(frames), depth=1)
    assert next(early) is frames[0]
    early.close()  # stopping early must not hang on the full queue
