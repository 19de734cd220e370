"""Checkpoints of a run in progress, so that the same command started again continues where a killed run stopped.

The checkpoint lives in the run's staging folder beside the files written so far. It is keyed by a hash of
everything that decides the result (input files, settings, weights, reefmap version): a run with other inputs or
settings starts over instead of mixing two runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from reefmap import __version__
from reefmap.config import ProcessConfig
from reefmap.io.files import atomic_path
from reefmap.runtime.notices import warn

CHECKPOINT = ".checkpoint.npz"
# settings that change neither the frames nor the map: a run may be resumed with other values (the thread count
# can move float sums in the last bits, so it is part of the key)
NEUTRAL_SETTINGS = {"quiet", "checkpoint_s"}


def run_key(videos: list[Path], config: ProcessConfig, weights: list[str], device: str) -> str:
    """A hash of what decides the run's result: input files (path, size, mtime), settings, weights and device."""
    files = input_files(videos)
    settings = {k: v for k, v in config.to_dict().items() if k not in NEUTRAL_SETTINGS}
    text = json.dumps({"files": files, "settings": settings, "weights": weights, "device": device,
                       "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_files(videos: list[Path]) -> list[list]:
    """Each video as [resolved path, size, modification time in ns], or [path] when it is missing."""
    return [[str(Path(v).resolve()), Path(v).stat().st_size, Path(v).stat().st_mtime_ns] if Path(v).exists()
            else [str(v)] for v in videos]


def save_checkpoint(folder: Path, parts: dict[str, dict[str, np.ndarray]]) -> None:
    """Write {part: {name: array}} atomically: a kill while writing leaves the previous checkpoint."""
    arrays = {f"{part}/{name}": np.asarray(value) for part, values in parts.items() for name, value in values.items()}
    with atomic_path(folder / CHECKPOINT) as partial:
        np.savez(partial, **arrays)


def load_checkpoint(folder: Path) -> dict[str, dict[str, np.ndarray]] | None:
    """The parts of the folder's checkpoint, or None when there is none (or it cannot be read)."""
    path = folder / CHECKPOINT
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            parts: dict[str, dict[str, np.ndarray]] = {}
            for key in data.files:
                part, name = key.split("/", 1)
                parts.setdefault(part, {})[name] = data[key]
    except (OSError, ValueError, KeyError) as exc:
        warn(f"the checkpoint of an interrupted run in {folder} cannot be read ({exc}); the run starts over")
        return None
    return parts


def remove_checkpoint(folder: Path) -> None:
    (folder / CHECKPOINT).unlink(missing_ok=True)
