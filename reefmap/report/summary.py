"""summary.json as one typed record: every run writes it and every reader loads it through `load_summary`, so a
key renamed on one side is an error at once instead of a silent `None` on the other."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from reefmap.errors import UsageError


@dataclass
class RunSummary:
    """The machine-readable record of a `reefmap process` run (docs/outputs.md describes each field)."""

    reefmap_version: str
    created: str  # UTC, ISO 8601
    inputs: list[dict]  # path, width, height, fps, frames, duration_s of each video file
    settings: dict  # the run's ProcessConfig
    window_s: list[float]  # [start, end] of the processed part of the video
    processing_size: list[int]  # [w, h] pixels
    camera: dict  # native and processing camera profiles
    device: str
    threads: int
    weights: dict  # task -> path, sha256, card excerpt
    perception: str
    taxonomy: str
    versions: dict
    frames_processed: int
    units: str
    scale: dict | None  # factor, source, measured_in_map_units, uncertainty_percent
    map: dict  # points, voxel_size, cell_size, ortho_size, mapped_cells, seabed_frame, rasters
    timings: dict  # stages, total_s, frames_per_s
    cover: list[dict]  # per class: planar, surface and point-count cover
    group_cover: list[dict]  # the same per class group
    groups_file: str
    point_count_method: str
    surface_cover_method: str
    levelled_by: str
    rugosity: dict  # overall, by_segment, planar_area, height_grid_cell, method
    segments: dict  # length, count, along
    excluded_classes: list[str]
    outputs: list[str]
    depth_maps: dict | None  # with --save-depth: path pattern, scale, size, frames
    network_health: dict
    mapping: dict  # how the camera path was found, and which frames each method placed
    camera_path_length: float  # map units
    tape: dict | None  # the tape's points, span and straightness
    resumed_from_frame: int | None
    warnings: list[str]
    trust: dict  # overall and per part: level and reasons

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict, source: str = "summary.json") -> "RunSummary":
        """The record of a summary.json; keys missing or unknown are a one-line error naming them."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in record]
        unknown = [k for k in record if k not in names]
        if missing or unknown:
            problems = ([f"lacks {', '.join(missing)}"] if missing else []) + \
                       ([f"has unknown {', '.join(unknown)}"] if unknown else [])
            raise UsageError(f"{source} {' and '.join(problems)}: it was not written by this reefmap version "
                             f"({'process the video again' if missing else 'update reefmap'})")
        return cls(**{n: record[n] for n in names})


def load_summary(run_dir: str | Path) -> RunSummary:
    """The summary.json of a finished run folder; a missing or unreadable one is a one-line error."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        raise UsageError(f"{run_dir} is not a finished `reefmap process` run (no summary.json); process the video "
                         "first or check the path")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} cannot be read ({exc}); process the video again") from None
    if not isinstance(record, dict):
        raise UsageError(f"{path} is not a reefmap summary; process the video again")
    return RunSummary.from_dict(record, str(path))
