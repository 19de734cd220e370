"""FrameSource: timestamped, resized, undistorted RGB frames sampled from one or more video files."""

from __future__ import annotations

import contextvars
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from reefmap.errors import UsageError, VideoError
from reefmap.io.camera import (
    CameraProfile, Undistorter, horizontal_fov_deg, is_generic, resolve_profile, with_focal_length,
)
from reefmap.runtime.notices import warn

_SEEK_MIN_S = 5.0


def open_capture(path: str | Path) -> cv2.VideoCapture:
    """`cv2.VideoCapture` of `path` with FFmpeg's own log lines off (they would print beside reefmap's one-line
    errors and warnings about the same problem): OpenCV reads OPENCV_FFMPEG_LOGLEVEL when a capture opens, so it is
    set for the opening only and the process's environment is left as it was. A user's own setting wins."""
    saved = os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = saved if saved is not None else "-8"
    try:
        return cv2.VideoCapture(str(path))
    finally:
        if saved is None:
            del os.environ["OPENCV_FFMPEG_LOGLEVEL"]


@dataclass(frozen=True)
class Frame:
    """One sampled frame: `image` is (H, W, 3) uint8 RGB at the processing size, undistorted."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about one video file."""

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float


def parse_time(text: str | float | None) -> float | None:
    """Seconds from `12.5`, `mm:ss(.s)` or `hh:mm:ss(.s)`; None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    match = re.fullmatch(r"\s*(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)\s*", str(text))
    if not match:
        raise UsageError(f"cannot read time '{text}': give seconds (75.5) or mm:ss (1:15.5)")
    parts = [float(p) for p in match.groups() if p is not None]
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60.0 + part
    return seconds


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video and read its size, frame rate and length, or raise a clear VideoError."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"video not found: {path}; check the path")
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a video file; name the video file(s) inside it")
    cap = open_capture(path)
    try:
        if not cap.isOpened():
            raise VideoError(f"cannot open {path} as a video: it is not a video file OpenCV can decode (MP4/MOV/AVI)")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if width <= 0 or height <= 0 or frame_count <= 0 or not cap.grab():
            raise VideoError(f"{path} contains no video frames; check that the recording is complete")
    finally:
        cap.release()
    if not (fps > 0 and math.isfinite(fps)):
        raise VideoError(f"{path} reports no frame rate; re-encode it (e.g. ffmpeg -i in.mp4 out.mp4)")
    return VideoInfo(path, width, height, fps, frame_count, frame_count / fps)


def processing_size(width: int, height: int, target_width: int | None) -> tuple[int, int]:
    """(w, h) with width `target_width` (or native), aspect kept, both even."""
    if not target_width or target_width >= width:
        return width - width % 2, height - height % 2
    h = int(round(height * target_width / width / 2.0)) * 2
    return target_width - target_width % 2, max(h, 2)


class FrameSource:
    """Frames sampled at `fps` by timestamp from chapters played back to back.

    Times are seconds from the start of the first file; `start_s`/`end_s` select a window.
    Iterating decodes lazily, so memory does not grow with video length.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        fps: float = 10.0,
        start_s: float | None = None,
        end_s: float | None = None,
        width: int | None = 640,
        camera: str = "auto",
        hfov_deg: float = 70.0,
    ):
        if not paths:
            raise UsageError("no video given: name one video file, or several GoPro chapters in order")
        if not fps > 0:
            raise UsageError(f"--fps {fps} must be positive (e.g. 10)")
        if width is not None and width < 32:
            raise UsageError(f"--width {width} is too small; use at least 32 pixels (default 640)")
        self.videos = [probe_video(p) for p in paths]
        first = self.videos[0]
        for v in self.videos[1:]:
            if (v.width, v.height) != (first.width, first.height):
                raise UsageError(
                    f"{v.path} is {v.width}x{v.height} but {first.path} is {first.width}x{first.height}: "
                    "chapters of one transect must share a video mode"
                )
        self.duration_s = sum(v.duration_s for v in self.videos)
        self.start_s = 0.0 if start_s is None else float(start_s)
        self.end_s = self.duration_s if end_s is None else min(float(end_s), self.duration_s)
        if self.start_s < 0:
            raise UsageError(f"--start {self.start_s:g}s is negative; give a time from 0")
        if end_s is not None and start_s is not None and end_s <= start_s:
            raise UsageError(f"--start {start_s:g}s is not before --end {end_s:g}s; swap or fix them")
        if self.start_s >= self.duration_s:
            raise UsageError(
                f"--start {self.start_s:g}s is past the end of the video ({self.duration_s:.2f} s); give an earlier start"
            )
        self.fps = float(fps)
        self.size = processing_size(first.width, first.height, width)
        native = resolve_profile(camera, first.path, first.width, first.height, hfov_deg)
        self.native_camera = native
        self.undistort = Undistorter(native.scaled_to(*self.size))
        self.camera: CameraProfile = self.undistort.output
        self.camera_guessed = is_generic(native)  # no profile: the focal length is a field-of-view guess

    def use_focal_length(self, focal_px: float) -> None:
        """Replace the guessed camera's focal length by a measured one (`focal_px` at the processing size)."""
        name = f"self_calibrated_hfov{horizontal_fov_deg(focal_px, self.size[0]):.1f}"
        self.camera = with_focal_length(self.camera, focal_px, name)
        self.native_camera = with_focal_length(self.native_camera, focal_px * self.native_camera.image_size[0]
                                               / self.size[0], name)

    def __len__(self) -> int:
        """Number of frames the sampling will yield (exact for constant frame rate files)."""
        return len(self._target_times())

    def _target_times(self) -> np.ndarray:
        step = 1.0 / self.fps
        count = int(math.floor((self.end_s - self.start_s) / step + 1e-6)) + 1
        times = self.start_s + step * np.arange(count)
        return times[times < self.end_s - 1e-9] if count > 1 else times

    def __iter__(self) -> Iterator[Frame]:
        return self.frames_from(0)

    def frames_from(self, first: int) -> Iterator[Frame]:
        """The sampled frames from number `first` on (numbers and times as a full iteration gives them)."""
        targets = self._target_times()
        k = first
        offset = 0.0
        for video in self.videos:
            if k >= len(targets):
                break
            file_end = offset + video.duration_s
            if targets[k] < file_end:
                for time_s, image in self._read(video, offset, targets, k):
                    yield Frame(index=k, time_s=time_s, image=image)
                    k += 1
            offset = file_end

    def _read(self, video: VideoInfo, offset: float, targets: np.ndarray, k: int):
        """Yield (time_s, image) for targets[k:] that fall in this file."""
        half_frame = 0.5 / video.fps
        cap = open_capture(video.path)
        try:
            local_start = targets[k] - offset
            if local_start > _SEEK_MIN_S:
                cap.set(cv2.CAP_PROP_POS_MSEC, (local_start - 1.0) * 1000.0)
            frame_number = 0
            while k < len(targets):
                if not cap.grab():
                    if offset + (frame_number + 1) / video.fps < min(self.end_s, offset + video.duration_s) - 1.0:
                        warn(
                            f"{video.path} ends early at {frame_number / video.fps:.2f} s "
                            f"(header says {video.duration_s:.2f} s); it may be truncated"
                        )
                    return
                msec = cap.get(cv2.CAP_PROP_POS_MSEC)
                local_t = msec / 1000.0 if msec > 0 or frame_number == 0 else frame_number / video.fps
                frame_number += 1
                t = offset + local_t
                if t >= self.end_s:
                    return
                if t + half_frame < targets[k]:
                    continue
                ok, bgr = cap.retrieve()
                if not ok:
                    raise VideoError(f"{video.path}: frame at {local_t:.2f} s cannot be decoded; the file may be corrupt")
                yield t, self._prepare(bgr)
                while k < len(targets) and targets[k] <= t + half_frame:
                    k += 1
        finally:
            cap.release()

    def _prepare(self, bgr: np.ndarray) -> np.ndarray:
        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
        return self.undistort(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


_DONE = object()


def prefetch(frames: Iterable[Frame], depth: int = 8) -> Iterator[Frame]:
    """Decode ahead in a background thread (at most `depth` frames held), so decoding overlaps inference.

    Errors in the decoder are raised in the consumer; stopping early ends the thread.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        queue.put(frame, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(_DONE)
        except BaseException as exc:
            queue.put(exc)

    context = contextvars.copy_context()  # the run's warnings collector reaches the decoder thread
    thread = threading.Thread(target=context.run, args=(produce,), name="reefmap-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
