"""The Python API: what users import. `reefmap.process(videos, out_dir, **settings)`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from reefmap.config import ProcessConfig
from reefmap.errors import UsageError
from reefmap.io.video import parse_time
from reefmap.models.segformer import DEFAULT_INPUT_WIDTH, DEFAULT_STRIDE, DEFAULT_WINDOW
from reefmap.run.pipeline import ProcessResult, run

__all__ = ["ProcessResult", "batch", "calibrate", "compare", "evaluate", "install_weights", "process", "report", "synth"]


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


def calibrate(videos: str | Path | Sequence[str | Path], name: str, **settings) -> dict:
    """Self-calibrate the camera of a clip (see `reefmap.io.calibration.calibrate`); returns its record."""
    from reefmap.io.calibration import calibrate as run_calibration

    for key in ("start_s", "end_s"):
        settings[key] = parse_time(settings.get(key))
    return run_calibration([videos] if isinstance(videos, (str, Path)) else list(videos), name, **settings)


def synth(out_dir: str | Path, quiet: bool = False, **settings) -> dict:
    """Render a synthetic reef transect and its ground truth into `out_dir` (fields of `SynthSettings`)."""
    from reefmap.synthetic.dataset import SynthSettings, synthesize

    unknown = set(settings) - set(SynthSettings.__dataclass_fields__)
    if unknown:
        raise UsageError(f"unknown synth setting(s) {sorted(unknown)}; known: {sorted(SynthSettings.__dataclass_fields__)}")
    return synthesize(out_dir, SynthSettings(**settings), quiet=quiet)


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

    unknown = set(settings) - ProcessConfig.field_names()
    if unknown:
        raise UsageError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(ProcessConfig.field_names())}")
    return run_batch(manifest, out_dir, jobs=jobs, quiet=quiet, ray=ray, **settings)


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
