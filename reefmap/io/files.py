"""Output files: a run folder that only shows finished files (staged, locked, committed), JSON and camera-pose CSVs."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np

from reefmap.errors import OutputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to, moved onto `path` when the block ends and removed when it fails:
    `path` is always absent, the old file or the whole new one. The name keeps `path`'s suffix (for writers that go
    by it) behind a leading dot (which run folders skip)."""
    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")


class StagedOutputs:
    """Files are written into a hidden staging folder inside `out_dir` and moved in by `commit()`.

    A crash leaves only the staging folder (removed by `discard()`), never a finished-looking file.
    `commit` moves `last` (the run summary) after everything else. While open, the folder is locked:
    a second run writing to the same folder is refused instead of mixing its files in.
    With `key`, the staging folder is named by it and kept when the run is killed or interrupted, so the same run
    started again finds it (see `reefmap.run.resume`); staging folders of other runs are removed.
    """

    def __init__(self, out_dir: str | Path, key: str | None = None):
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.out_dir / ".reefmap.lock", "w")
        except OSError as exc:
            raise OutputError(
                f"cannot write to output folder {self.out_dir}: {exc.strerror}; choose a folder you can write to with --out"
            ) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise OutputError(f"another reefmap run is writing to {self.out_dir}; wait for it or choose another --out") from None
        self.staging = self.out_dir / f".reefmap-partial-{key or uuid.uuid4().hex[:8]}"
        for stale in self.out_dir.glob(".reefmap-partial-*"):
            if stale != self.staging:
                shutil.rmtree(stale, ignore_errors=True)
        self.resumed = self.staging.is_dir()
        self.staging.mkdir(exist_ok=True)

    def path(self, name: str) -> Path:
        """Where to write output `name` now."""
        return self.staging / name

    def commit(self, last: str) -> list[Path]:
        names = sorted(p.name for p in self.staging.iterdir() if p.name != last and not p.name.startswith(".")) + [last]
        for name in names:
            target = self.out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(self.staging / name, target)
        shutil.rmtree(self.staging)
        self._lock.close()
        return [self.out_dir / n for n in names]

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self._lock.close()

    def release(self) -> None:
        """Unlock but keep the staging folder, for a later run to resume from."""
        self._lock.close()


def write_json(data: dict, path: Path) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.ndarray,)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


POSE_COLUMNS = ("frame", "time_s") + tuple(f"m{r}{c}" for r in range(4) for c in range(4))


def write_poses_csv(times: np.ndarray, poses: np.ndarray, path: Path) -> None:
    """One row per frame: index, time in seconds and the 4x4 camera-to-world matrix, row-major."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(POSE_COLUMNS)
        for i, (t, pose) in enumerate(zip(times, poses)):
            writer.writerow([i, f"{t:.6f}", *(f"{v:.9g}" for v in np.asarray(pose).ravel())])


def read_poses_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N,) times and (N, 4, 4) camera-to-world poses from a file written by `write_poses_csv`."""
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return data[:, 1], data[:, 2:18].reshape(-1, 4, 4)
