"""GoPro GPMF telemetry: the gravity vector per video frame, read from the MP4's metadata track.

A minimal reader of the ISO base media file layout (boxes) and GPMF's KLV records (4-char key,
type, struct size, repeat, 4-byte padding; SCAL divides the values that follow in the stream).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
_TYPES = {"b": ">i1", "B": ">u1", "s": ">i2", "S": ">u2", "l": ">i4", "L": ">u4", "f": ">f4", "d": ">f8",
          "j": ">i8", "J": ">u8"}


@dataclass(frozen=True)
class Gravity:
    """(N,) seconds from the start of the file and (N, 3) unit gravity vectors in the OpenCV camera frame."""

    times_s: np.ndarray
    vectors: np.ndarray

    def at(self, time_s: float) -> np.ndarray:
        """The gravity vector nearest in time."""
        return self.vectors[int(np.argmin(np.abs(self.times_s - time_s)))]


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, min(pos + size, end)
        pos += size


def _find(data: bytes, start: int, end: int, kind: bytes):
    return next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)


def _gpmf_samples(path: Path) -> list[tuple[float, float, bytes]]:
    """(start s, duration s, payload) of each sample of the GoPro metadata ('gpmd') track; [] if there is none."""
    data = Path(path).read_bytes()
    moov = _find(data, 0, len(data), b"moov")
    if moov is None:
        return []
    for kind, s, e in _boxes(data, *moov):
        if kind != b"trak":
            continue
        mdia = _find(data, s, e, b"mdia")
        minf = _find(data, *mdia, b"minf") if mdia else None
        stbl = _find(data, *minf, b"stbl") if minf else None
        if not stbl:
            continue
        stsd = _find(data, *stbl, b"stsd")
        if stsd is None or data[stsd[0] + 12:stsd[0] + 16] != b"gpmd":
            continue
        mdhd = _find(data, *mdia, b"mdhd")
        version = data[mdhd[0]]
        timescale = struct.unpack(">I", data[mdhd[0] + (20 if version == 1 else 12):][:4])[0]
        return _read_samples(data, stbl, timescale)
    return []


def _read_samples(data: bytes, stbl: tuple[int, int], timescale: int) -> list[tuple[float, float, bytes]]:
    stsz = _find(data, *stbl, b"stsz")
    fixed, count = struct.unpack(">II", data[stsz[0] + 4:stsz[0] + 12])
    sizes = [fixed] * count if fixed else list(struct.unpack(f">{count}I", data[stsz[0] + 12:stsz[0] + 12 + 4 * count]))
    co = _find(data, *stbl, b"stco")
    if co:
        n = struct.unpack(">I", data[co[0] + 4:co[0] + 8])[0]
        offsets = list(struct.unpack(f">{n}I", data[co[0] + 8:co[0] + 8 + 4 * n]))
    else:
        co = _find(data, *stbl, b"co64")
        n = struct.unpack(">I", data[co[0] + 4:co[0] + 8])[0]
        offsets = list(struct.unpack(f">{n}Q", data[co[0] + 8:co[0] + 8 + 8 * n]))
    stsc = _find(data, *stbl, b"stsc")
    m = struct.unpack(">I", data[stsc[0] + 4:stsc[0] + 8])[0]
    runs = [struct.unpack(">III", data[stsc[0] + 8 + 12 * i:stsc[0] + 20 + 12 * i]) for i in range(m)]
    per_chunk = []
    for chunk in range(1, len(offsets) + 1):
        per_chunk.append(next(r[1] for r in reversed(runs) if r[0] <= chunk))
    stts = _find(data, *stbl, b"stts")
    k = struct.unpack(">I", data[stts[0] + 4:stts[0] + 8])[0]
    durations = []
    for i in range(k):
        n_samples, delta = struct.unpack(">II", data[stts[0] + 8 + 8 * i:stts[0] + 16 + 8 * i])
        durations += [delta / timescale] * n_samples
    samples, index, t = [], 0, 0.0
    for offset, n_in_chunk in zip(offsets, per_chunk):
        for _ in range(n_in_chunk):
            if index >= len(sizes):
                break
            duration = durations[index] if index < len(durations) else 0.0
            samples.append((t, duration, data[offset:offset + sizes[index]]))
            offset += sizes[index]
            t += duration
            index += 1
    return samples


def parse_klv(payload: bytes, wanted: bytes = b"GRAV") -> list[np.ndarray]:
    """Scaled (R, C) arrays of every `wanted` record in a GPMF payload, each divided by the stream's SCAL."""
    found: list[np.ndarray] = []

    def walk(start: int, end: int) -> None:
        scale = None
        pos = start
        while pos + 8 <= end:
            key = payload[pos:pos + 4]
            kind = chr(payload[pos + 4])
            size, repeat = payload[pos + 5], struct.unpack(">H", payload[pos + 6:pos + 8])[0]
            length = size * repeat
            body = pos + 8
            if kind == "\0":
                walk(body, body + length)
            elif kind in _TYPES:
                width = np.dtype(_TYPES[kind]).itemsize
                values = np.frombuffer(payload[body:body + length], dtype=_TYPES[kind]).astype(np.float64)
                values = values.reshape(repeat, size // width) if size // width > 0 else values
                if key == b"SCAL":
                    scale = values.ravel()
                elif key == wanted:
                    found.append(values / (scale if scale is not None else 1.0))
            pos = body + ((length + 3) & ~3)

    walk(0, len(payload))
    return found


def read_gravity(path: str | Path) -> Gravity | None:
    """Gravity per telemetry sample of a GoPro MP4 (camera frame, unit vectors, pointing down), or None."""
    try:
        samples = _gpmf_samples(Path(path))
    except (OSError, struct.error, StopIteration, TypeError, ValueError):
        return None
    times, vectors = [], []
    for start, duration, payload in samples:
        for block in parse_klv(payload):
            n = len(block)
            times += list(start + duration * (np.arange(n) + 0.5) / n)
            vectors.append(block[:, :3])
    if not vectors:
        return None
    vectors = np.concatenate(vectors)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    good = norms[:, 0] > 0
    return Gravity(np.array(times)[good], vectors[good] / norms[good])


def transect_gravity(paths: list[str | Path], durations_s: list[float]) -> Gravity | None:
    """Gravity over chapters played back to back (times from the start of the first), or None if any lacks it."""
    parts = [read_gravity(p) for p in paths]
    if not parts or any(p is None for p in parts):
        return None
    offsets = np.concatenate([[0.0], np.cumsum(durations_s)[:-1]])
    return Gravity(np.concatenate([p.times_s + o for p, o in zip(parts, offsets)]),
                   np.concatenate([p.vectors for p in parts]))


def up_direction(gravity: Gravity, times_s: np.ndarray, poses: np.ndarray, frames: int = 30) -> np.ndarray:
    """World 'up' from the gravity seen by the first `frames` cameras, rotated by their camera-to-world poses."""
    down = np.stack([poses[i, :3, :3] @ gravity.at(t) for i, t in enumerate(times_s[:frames])])
    mean = down.mean(axis=0)
    return -mean / np.linalg.norm(mean)
