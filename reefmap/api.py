"""The Python API: what users import. `reefmap.process(videos, out_dir, **settings)`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from reefmap.config import ProcessConfig
from reefmap.errors import UsageError
from reefmap.pipeline import ProcessResult, run
from reefmap.video import parse_time

__all__ = ["ProcessResult", "process"]


def process(videos: str | Path | Sequence[str | Path], out_dir: str | Path, **settings) -> ProcessResult:
    """Turn a transect video (or its GoPro chapters, in order) into a labelled cloud and cover table.

    `settings` are the fields of `ProcessConfig` (fps, start_s, end_s, width, camera, device, ...);
    `start_s`/`end_s` also accept "mm:ss". Outputs land in `out_dir`; see `ProcessResult`.
    """
    unknown = set(settings) - ProcessConfig.field_names()
    if unknown:
        raise UsageError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(ProcessConfig.field_names())}")
    for key in ("start_s", "end_s"):
        settings[key] = parse_time(settings.get(key))
    if isinstance(videos, (str, Path)):
        videos = [videos]
    return run(list(videos), out_dir, ProcessConfig(**settings))
