"""Quality-control video of a run: camera image | class overlay | depth | the map growing under the camera (H.264)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from tqdm import tqdm

from reefmap.config import ProcessConfig
from reefmap.errors import UsageError
from reefmap.io.files import atomic_path, read_poses_csv
from reefmap.io.video import FrameSource
from reefmap.perception.networks import load_networks, resolve_device
from reefmap.perception.oracle import TruthReader
from reefmap.perception.streams import LabelledFrame, NetworkStream, OracleStream
from reefmap.report.summary import RunSummary, load_summary
from reefmap.runtime.timing import StageTimer
from reefmap.taxonomy import Taxonomy, default_taxonomy

PANEL_WIDTH = 480


def run_frames(run_dir: Path, summary: RunSummary) -> tuple[FrameSource, Taxonomy, Iterator[LabelledFrame]]:
    """The run's frames again, with labels and depth from the same weights (or the same oracle truth)."""
    settings = {k: v for k, v in summary.settings.items() if k in ProcessConfig.field_names()}
    config = ProcessConfig(**settings)
    for name, field in (("segmentation", "seg_weights"), ("depth_pose", "depth_weights")):
        if name in summary.weights:
            setattr(config, field, summary.weights[name]["path"])
    videos = [v["path"] for v in summary.inputs]
    missing = [v for v in videos if not Path(v).exists()]
    if missing:
        raise UsageError(f"the run's video {missing[0]} is gone; the QC video needs the input video at that path")
    truth = TruthReader(config.oracle) if config.oracle else None
    camera = str(truth.camera_profile) if truth and config.camera == "auto" else config.camera
    source = FrameSource(videos, config.fps, config.start_s, config.end_s, config.width, camera, config.hfov_deg)
    timer = StageTimer()
    if truth:
        taxonomy = default_taxonomy()
        return source, taxonomy, iter(OracleStream(source, truth, taxonomy, timer))
    device = resolve_device(config.device)
    segmenter, estimator = load_networks(config.seg_weights, config.depth_weights, device)
    stream = NetworkStream(source, segmenter, estimator, timer, config.batch_size, config.smooth_labels,
                           config.detect_tape)
    return source, segmenter.taxonomy, iter(stream)


def depth_panel(depth: np.ndarray, max_depth: float, size: tuple[int, int]) -> np.ndarray:
    """Depth as a turbo colour map (near = red, far = blue, beyond `max_depth` black), RGB at `size`."""
    scaled = np.clip(np.nan_to_num(depth) / max_depth, 0, 1)
    colour = cv2.applyColorMap((255 * (1 - scaled)).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    colour[(depth <= 0) | ~np.isfinite(depth) | (depth >= max_depth)] = 0
    return cv2.resize(colour, size, interpolation=cv2.INTER_NEAREST)


def map_panel(ortho: np.ndarray, column: float, row: float, size: tuple[int, int]) -> np.ndarray:
    """A window of the RGBA class map centred on the camera's column; what lies ahead of the camera is dimmed."""
    height, width = ortho.shape[:2]
    window = max(1, int(round(height * size[0] / size[1])))
    start = int(np.clip(column - window / 2, 0, max(0, width - window)))
    piece = ortho[:, start:start + window].astype(np.float32)
    rgb = piece[..., :3] * (piece[..., 3:] / 255) + 255 * (1 - piece[..., 3:] / 255)
    ahead = np.arange(start, start + piece.shape[1]) > column
    rgb[:, ahead] = 0.35 * rgb[:, ahead] + 0.65 * 255
    panel = np.full((size[1], size[0], 3), 255, np.uint8)
    scale = min(size[0] / max(window, 1), size[1] / height)
    resized = cv2.resize(rgb.astype(np.uint8), (max(1, int(piece.shape[1] * scale)), max(1, int(height * scale))),
                         interpolation=cv2.INTER_NEAREST)
    panel[:resized.shape[0], :resized.shape[1]] = resized
    centre = (int((column - start) * scale), int(row * scale))
    cv2.circle(panel, centre, 6, (0, 0, 0), 2, cv2.LINE_AA)
    return panel


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(panel, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(panel, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def camera_cells(run_dir: Path, summary: RunSummary, ortho_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) ortho column and row of each camera centre of trajectory.csv, from the world file and seabed frame."""
    _, poses = read_poses_csv(run_dir / "trajectory.csv")
    frame = summary.map["seabed_frame"]
    local = (poses[:, :3, 3] - np.array(frame["origin"])) @ np.array(frame["axes_rows_u_v_up"]).T
    a, _, _, e, c, f = (float(v) for v in (run_dir / "ortho_labels.pgw").read_text().split())
    column = (local[:, 0] - (c - a / 2)) / a
    row = np.clip((local[:, 1] - (f - e / 2)) / e, 0, ortho_shape[0] - 1)
    return column, row


def render_qc_video(run_dir: str | Path, out: str | Path | None = None, quiet: bool = False) -> Path:
    """Write the run's QC video (H.264 MP4, one frame per processed frame) to `out` (default RUN_DIR/qc.mp4)."""
    import imageio_ffmpeg

    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").exists() or not (run_dir / "ortho_labels.pgw").exists():
        raise UsageError(f"{run_dir} is not a finished run of this reefmap version (no summary.json or "
                         "ortho_labels.pgw); process the video again")
    summary = load_summary(run_dir)
    out = Path(out) if out else run_dir / "qc.mp4"
    ortho = cv2.cvtColor(cv2.imread(str(run_dir / "ortho_labels.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    columns, rows = camera_cells(run_dir, summary, ortho.shape[:2])
    source, taxonomy, frames = run_frames(run_dir, summary)
    w, h = source.size
    size = (PANEL_WIDTH, int(round(PANEL_WIDTH * h / w / 2)) * 2)
    lut = taxonomy.colour_lut()[taxonomy.ids]
    with atomic_path(out) as partial:
        writer = imageio_ffmpeg.write_frames(str(partial), (2 * size[0], 2 * size[1]),
                                             fps=float(summary.settings["fps"]), codec="libx264",
                                             pix_fmt_out="yuv420p", quality=7, macro_block_size=2,
                                             ffmpeg_log_level="error")
        writer.send(None)
        try:
            with torch.inference_mode(), tqdm(total=len(source), unit="frame", desc="qc video", disable=quiet,
                                              file=sys.stderr) as bar:
                for k, labelled in enumerate(frames):
                    image = cv2.resize(labelled.frame.image, size, interpolation=cv2.INTER_AREA)
                    labels = cv2.resize(lut[labelled.channel], size, interpolation=cv2.INTER_NEAREST)
                    overlay = cv2.addWeighted(image, 0.45, labels, 0.55, 0)
                    k_map = min(k, len(columns) - 1)
                    top = np.hstack([_label(image.copy(), f"video {labelled.frame.time_s:6.1f} s"),
                                     _label(overlay, "classes")])
                    depth_image = depth_panel(labelled.depth, float(summary.settings["max_depth"]), size)
                    bottom = np.hstack([_label(depth_image, "depth"),
                                        _label(map_panel(ortho, columns[k_map], rows[k_map], size), "map")])
                    writer.send(np.ascontiguousarray(np.vstack([top, bottom])))
                    bar.update(1)
        finally:
            writer.close()
    return out
