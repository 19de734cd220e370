"""The Python API: what users import. `reefmap.process(videos, out_dir, **settings)`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from reefmap.config import (
    CalibrationSettings, DepthPoseTraining, ProcessConfig, SegmentationTraining, SynthSettings, command_settings,
)
from reefmap.errors import UsageError
from reefmap.io.video import parse_time
from reefmap.models.hub import HUB_PREFIX
from reefmap.models.segformer import DEFAULT_INPUT_WIDTH, DEFAULT_STRIDE, DEFAULT_WINDOW
from reefmap.run.pipeline import ProcessResult, run

__all__ = ["CalibrationSettings", "DepthPoseTraining", "HUB_PREFIX", "ProcessConfig", "ProcessResult",
           "SegmentationTraining", "SynthSettings", "batch", "calibrate", "compare", "evaluate", "import_deepreefmap",
           "install_weights", "installed_weights", "process", "qc_video", "report", "snapshot", "synth", "train_depth",
           "train_segmentation", "view", "weights_card"]


def process(videos: str | Path | Sequence[str | Path], out_dir: str | Path, **settings) -> ProcessResult:
    """Turn a transect video (or its GoPro chapters, in order) into a labelled cloud and cover table.

    `settings` are the fields of `ProcessConfig` (fps, start_s, end_s, width, camera, device, ...);
    `start_s`/`end_s` also accept "mm:ss". Outputs land in `out_dir`; see `ProcessResult`.
    """
    settings = _settings(ProcessConfig, settings)
    if isinstance(videos, (str, Path)):
        videos = [videos]
    return run(list(videos), out_dir, ProcessConfig(**settings))


def _settings(cls, settings: dict) -> dict:
    """`settings` checked against the fields of the settings dataclass `cls` (a one-line error names the unknown
    ones), with times given as "mm:ss" in seconds."""
    known = {f.name for f in command_settings(cls)}
    unknown = set(settings) - known
    if unknown:
        raise UsageError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return {k: parse_time(v) if k in ("start_s", "end_s") else v for k, v in settings.items()}


def calibrate(videos: str | Path | Sequence[str | Path], name: str, **settings) -> dict:
    """Self-calibrate the camera of a clip (fields of `CalibrationSettings`; see `reefmap.io.calibration.calibrate`);
    returns its record."""
    from reefmap.io.calibration import calibrate as run_calibration

    settings = CalibrationSettings(**_settings(CalibrationSettings, settings))
    return run_calibration([videos] if isinstance(videos, (str, Path)) else list(videos), name, settings)


def synth(out_dir: str | Path, quiet: bool = False, **settings) -> dict:
    """Render a synthetic reef transect and its ground truth into `out_dir` (fields of `SynthSettings`)."""
    from reefmap.synthetic.dataset import synthesize

    return synthesize(out_dir, SynthSettings(**_settings(SynthSettings, settings)), quiet=quiet)


def evaluate(run_dir: str | Path, truth_dir: str | Path) -> dict:
    """Compare a `process` run with a `synth` truth folder; also written as RUN_DIR/evaluation.json."""
    from reefmap.report.evaluation import evaluate as run_evaluation

    return run_evaluation(run_dir, truth_dir)


def report(run_dir: str | Path) -> list[Path]:
    """(Re)write RUN_DIR/report.html and report.png from a finished run's files."""
    from reefmap.report.document import write_report

    return write_report(run_dir)


def compare(before_dir: str | Path, after_dir: str | Path, out_dir: str | Path) -> list:
    """Cover change between two runs of one transect: OUT_DIR/change.csv and change.png; returns the changes."""
    from reefmap.report.compare import compare_runs

    return compare_runs(before_dir, after_dir, out_dir)


def batch(manifest: str | Path, out_dir: str | Path, jobs: int = 1, quiet: bool = False, ray: str | None = None,
          **settings) -> dict:
    """Process every transect of a manifest CSV into `out_dir` (see `reefmap.run.batch`); returns the batch summary."""
    from reefmap.run.batch import run_batch

    return run_batch(manifest, out_dir, jobs=jobs, quiet=quiet, ray=ray, **_settings(ProcessConfig, settings))


def install_weights(source: str, sha256: str | None = None, name: str | None = None,
                    input_width: int = DEFAULT_INPUT_WIDTH, window: tuple[int, int] = DEFAULT_WINDOW,
                    stride: tuple[int, int] = DEFAULT_STRIDE) -> Path:
    """Install weights into the user's folder and return their path: a .safetensors file or URL with its card, or a
    SegFormer as `hf:OWNER/NAME[@REVISION]` or a local snapshot folder (run at `input_width` in `window`s every
    `stride` pixels). Without `name` they become the default for their task."""
    from reefmap.models.hub import install_segformer, is_hub_source
    from reefmap.models.install import install_weights as install_file

    if not is_hub_source(source):
        return install_file(source, sha256, name)
    if sha256:
        raise UsageError("--sha256 checks a single weights file; a hub model is pinned with hf:OWNER/NAME@REVISION")
    return install_segformer(source, name, input_width, window, stride)


def installed_weights() -> tuple[list[Path], list]:
    """The weights search folders (first match wins) and every weights file with a card in them
    (`InstalledWeights`: path, card, is_default)."""
    from reefmap.models.install import installed_weights as found
    from reefmap.models.weights import weights_dirs

    return weights_dirs(), found()


def weights_card(path: str | Path) -> tuple[dict, str]:
    """The card of a weights file (training history and class list left out) and the file's SHA-256."""
    import json

    from reefmap.errors import WeightsError
    from reefmap.models.weights import card_path, sha256_file

    path = Path(path)
    if not path.exists() or not card_path(path).exists():
        raise WeightsError(f"{path} or its card {card_path(path).name} is missing; see `reefmap weights list`")
    card = json.loads(card_path(path).read_text())
    card.get("training", {}).pop("history", None)
    card.pop("taxonomy", None)
    return card, sha256_file(path)


def import_deepreefmap(checkpoint: str | Path, classes: str | Path, out: str | Path | None = None,
                       input_size: tuple[int, int] = (640, 384)) -> Path:
    """Convert DeepReefMap's segmentation checkpoint (read as tensors only) into reefmap weights; returns their path."""
    from reefmap.models.deepreefmap import import_deepreefmap as convert

    return convert(checkpoint, classes, out, input_size)


def train_segmentation(data: Sequence[str | Path], out: str | Path, log=print, **settings) -> Path:
    """Train the segmentation U-Net (fields of `SegmentationTraining`); returns the weights path."""
    from reefmap.train.segmentation import train_segmentation as train

    settings = _settings(SegmentationTraining, settings)
    return train(SegmentationTraining(data=[str(d) for d in data], out=str(out), **settings), log=log)


def train_depth(data: Sequence[str | Path], out: str | Path, log=print, **settings) -> Path:
    """Train the depth and pose networks on `reefmap synth` folders (supervised) and/or dive videos
    (self-supervised), told apart by their contents; fields of `DepthPoseTraining`."""
    from reefmap.train.data import is_synth_folder
    from reefmap.train.depth_pose import train_depth_pose

    settings = _settings(DepthPoseTraining, settings)
    folders = [str(d) for d in data if is_synth_folder(d)]
    videos = [str(d) for d in data if not is_synth_folder(d)]
    return train_depth_pose(DepthPoseTraining(data=folders, videos=videos, out=str(out), **settings), log=log)


def qc_video(run_dir: str | Path, out: str | Path | None = None, quiet: bool = False) -> Path:
    """Write a run's QC video (camera | classes | depth | map under the camera) to `out` (default RUN_DIR/qc.mp4)."""
    from reefmap.viewer.qc_video import render_qc_video

    return render_qc_video(run_dir, out, quiet)


def snapshot(source: str | Path, out: str | Path, view: str = "top", colouring: str = "labels",
             size: tuple[int, int] = (1600, 900), point_size: float = 2.0) -> Path:
    """Render a run folder or a .ply/.pcd cloud to a PNG without a display, with legend and scale bar."""
    from reefmap.viewer.window import load_map, render_snapshot

    return render_snapshot(load_map(source), out, view, colouring, size, point_size)


def view(source: str | Path, colouring: str = "labels", point_size: float = 2.0, keys: str = "",
         screenshot: str | Path | None = None) -> None:
    """Open a run folder or a .ply/.pcd cloud in the Open3D viewer (`keys` applied after opening)."""
    from reefmap.viewer.window import InteractiveViewer, camera_path, load_map

    InteractiveViewer(load_map(source), camera_path(source), colouring, point_size).run(keys, screenshot)
