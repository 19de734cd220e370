"""Every default of a processing run in one printable, saveable dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class ProcessConfig:
    """Settings of `reefmap process`; units in the names (seconds, frames/s, pixels, map units)."""

    fps: float = 10.0
    start_s: float | None = None
    end_s: float | None = None
    width: int | None = 640
    camera: str = "auto"
    hfov_deg: float = 70.0
    seg_weights: str | None = None
    depth_weights: str | None = None
    device: str = "auto"
    batch_size: int = 4
    threads: int | None = None
    smooth_labels: bool = True
    detect_tape: bool = True
    fusion_stride: int = 2
    max_depth: float = 8.0
    voxel_size: float = 0.02
    cell_size: float | None = None
    segment_length: float = 5.0
    point_segment_length: float = 1.0
    points_per_segment: int = 50
    groups: str | None = None
    oracle: str | None = None
    use_gravity: bool = True
    save_depth: bool = False
    checkpoint_s: float = 30.0
    mapping: str = "learned"
    sfm_fps: float = 5.0
    tape_length_m: float | None = None
    altitude_m: float | None = None
    quiet: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}
