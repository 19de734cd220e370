"""The `reefmap` command: thin click commands over the Python API."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import click

from reefmap import __version__
from reefmap.config import (
    PER_TRANSECT, CalibrationSettings, DepthPoseTraining, ProcessConfig, SegmentationTraining, SynthSettings,
    command_settings,
)
from reefmap.errors import ReefmapError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reefmap")
def main():
    """reefmap: underwater transect video -> labelled 3D reef map and benthic cover."""


class StagedOption(click.Option):
    """An option that knows which stage of the work it sets (its --help section)."""

    def __init__(self, *args, stage: str = "other", **kwargs):
        super().__init__(*args, **kwargs)
        self.stage = stage


class StagedCommand(click.Command):
    """A command whose --help lists its options under one heading per stage, in the order the stages come."""

    def format_options(self, ctx, formatter):
        sections: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record:
                sections.setdefault(getattr(param, "stage", "other"), []).append(record)
        sections["other"] = sections.pop("other", [])  # --help last
        for stage, records in sections.items():
            with formatter.section(f"{stage.capitalize()} options"):
                formatter.write_dl(records)


def _parse_size(ctx, param, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not WIDTHxHEIGHT (e.g. 640x360)") from None
    return w, h


def _option_type(f, hint: str):
    meta = f.metadata
    if meta["choices"]:
        return click.Choice(meta["choices"])
    if meta["kind"] == "path":
        return click.Path(path_type=str)
    if meta["kind"] in ("time", "size"):
        return str
    base = {"int": int, "float": float}.get(hint.split("|")[0].strip().split("[")[0], str)
    if base is not str and (meta["low"] is not None or meta["high"] is not None):
        return (click.IntRange if base is int else click.FloatRange)(meta["low"], meta["high"])
    return base


def setting_option(f):
    """The click option of one settings field (see `reefmap.config.setting`)."""
    meta, default = f.metadata, f.default
    names = meta["option"] or "--" + f.name.replace("_", "-")
    names = names if isinstance(names, tuple) else (names,)
    unit = f" [{meta['unit']}]" if meta["unit"] else ""
    shown = meta["shown_default"]
    kwargs = {"cls": StagedOption, "stage": meta["stage"], "help": meta["help"] + unit}
    if isinstance(default, bool):
        if "/" in names[0]:  # an on/off switch
            return click.option(*names, f.name, default=default, show_default=True, **kwargs)
        return click.option(*names, f.name, flag_value=not default, default=default, **kwargs)
    if isinstance(default, tuple):
        default = "x".join(str(v) for v in default)
    kwargs["help"] += f" [default: {shown}]" if shown else ""
    return click.option(*names, f.name, type=_option_type(f, f.type), default=default,
                        show_default=default is not None and not shown,
                        callback=_parse_size if meta["kind"] == "size" else None, **kwargs)


def setting_options(cls, skip: tuple[str, ...] = ()):
    """A decorator adding an option for every command-line field of the settings dataclass `cls` but `skip`."""
    def decorate(command):
        for f in reversed(command_settings(cls)):
            if f.name not in skip:
                command = setting_option(f)(command)
        return command
    return decorate


@main.command(cls=StagedCommand)
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output folder [default: ./<video>_reefmap].",
              cls=StagedOption, stage="output")
@setting_options(ProcessConfig)
def process(videos, out, **settings):
    """Map a transect: VIDEOS are one file or GoPro chapters in recording order."""
    from reefmap.api import process as run_process

    out = out or Path(f"{videos[0].stem}_reefmap")
    result = run_process(list(videos), out, **settings)
    if not settings["quiet"]:
        counted = sorted((r for r in result.cover if r.percent), key=lambda r: -r.percent)
        click.echo(f"mapped {result.summary.frames_processed} frames into {len(result.cloud)} points "
                   f"({result.summary.timings['frames_per_s']} frames/s)")
        for row in counted[:8]:
            click.echo(f"  {row.percent:6.2f} %  {row.name}")
        click.echo(f"outputs in {result.out_dir}")
        for line in result.trust_lines():
            click.echo(line)


@main.command(cls=StagedCommand)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the video and its truth.",
              cls=StagedOption, stage="output")
@setting_options(SynthSettings)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.", cls=StagedOption, stage="output")
def synth(out, quiet, **settings):
    """Render a synthetic reef transect video with exact ground truth."""
    from reefmap.api import synth as run_synth

    manifest = run_synth(out, quiet=quiet, **settings)
    if not quiet:
        truth = manifest["truth"]
        click.echo(f"{manifest['frames']} frames, path {manifest['path_length_m']:.2f} m, "
                   f"rugosity {truth['rugosity']:.3f}; video and truth in {out}")
        for row in sorted((r for r in truth["cover"] if r["percent_cover"]), key=lambda r: -r["percent_cover"])[:8]:
            click.echo(f"  {row['percent_cover']:6.2f} %  {row['class_name']}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir):
    """Write RUN_DIR/report.html (self-contained) and report.png from a finished run."""
    from reefmap.api import report as write_report

    for path in write_report(run_dir):
        click.echo(f"wrote {path}")


@main.command(cls=StagedCommand)
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the runs and survey.csv.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Transects processed at once (processes).")
@click.option("--ray", is_flag=False, flag_value="local", default=None,
              help="Run the transects as Ray tasks: on a new local Ray instance (--ray) or a cluster (--ray ADDRESS).")
@setting_options(ProcessConfig, skip=PER_TRANSECT)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.", cls=StagedOption, stage="run")
def batch(manifest, out, jobs, ray, quiet, **settings):
    """Process every transect of MANIFEST.csv (site, transect, date, video, start, end, camera, tape_length_m, ...)
    into OUT, skipping finished ones, and write OUT/survey.csv, failures.csv and survey_report.html. The
    processing options are those of `reefmap process`; a manifest column of the same name overrides them."""
    from reefmap.api import batch as run_batch

    if jobs < 1:
        raise click.BadParameter("--jobs must be at least 1", param_hint="--jobs")
    summary = run_batch(manifest, out, jobs=jobs, quiet=quiet, ray=ray,
                        **{k: v for k, v in settings.items() if v is not None})
    click.echo(f"{len(summary['finished'])} of {summary['transects']} transects mapped; {len(summary['failed'])} failed")
    for name, error in summary["failed"].items():
        click.echo(f"  failed {name}: {error}")
    click.echo(f"survey table in {out / 'survey.csv'}, report in {out / 'survey_report.html'}")
    if summary["failed"]:
        sys.exit(1)


@main.command(cls=StagedCommand)
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Profile name, used as `reefmap process --camera NAME`.",
              cls=StagedOption, stage="output")
@setting_options(CalibrationSettings)
def calibrate(videos, name, **settings):
    """Self-calibrate a camera (focal length, lens distortion) from a clip with strong motion: VIDEOS are one file
    or chapters. Writes a camera profile that `reefmap process --camera NAME` uses."""
    from reefmap.api import calibrate as run_calibration

    record = run_calibration(list(videos), name, **settings)
    profile = record["profile"]
    distortion = ", ".join(f"{k} {v:+.4f}" for k, v in profile["distortion"].items())
    click.echo(f"{record['registered']} of {record['frames']} frames registered; reprojection error "
               f"{record['reprojection_error_px']:.2f} px")
    click.echo(f"fx {profile['fx']:.1f} fy {profile['fy']:.1f} cx {profile['cx']:.1f} cy {profile['cy']:.1f} px at "
               f"{profile['image_size'][0]}x{profile['image_size'][1]}; {distortion}")
    click.echo(f"profile written to {record['path']}; use it with: reefmap process VIDEO --camera {name}")


@main.command("render-video")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="MP4 to write [default: RUN_DIR/qc.mp4].")
@click.option("-q", "--quiet", is_flag=True)
def render_video(run_dir, out, quiet):
    """QC video of a run: camera image | class overlay | depth | the map growing under the camera (H.264)."""
    from reefmap.api import qc_video

    click.echo(f"wrote {qc_video(run_dir, out, quiet)}")


@main.command()
@click.argument("before_dir", type=click.Path(path_type=Path))
@click.argument("after_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("compare"), show_default=True,
              help="Folder for change.csv and change.png.")
def compare(before_dir, after_dir, out):
    """Cover change from BEFORE_DIR to AFTER_DIR, two runs of the same transect, with 95 % intervals."""
    from reefmap.api import compare as run_compare

    changes = run_compare(before_dir, after_dir, out)
    real = [c for c in changes if c.exceeds_uncertainty]
    click.echo(f"{len(real)} of {len(changes)} classes and groups changed beyond the uncertainty:")
    for c in sorted(real, key=lambda c: -abs(c.change_pts)):
        click.echo(f"  {c.level:<5} {c.name:<30} {c.before_percent:6.2f} -> {c.after_percent:6.2f} %  "
                   f"({c.change_pts:+.2f} pts, 95 % CI {c.change_ci_low:+.2f} to {c.change_ci_high:+.2f})")
    click.echo(f"written to {out / 'change.csv'} and {out / 'change.png'}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--truth", "truth_dir", type=click.Path(path_type=Path), required=True, help="The `reefmap synth` folder.")
def evaluate(run_dir, truth_dir):
    """Compare a processing run with synthetic ground truth; writes RUN_DIR/evaluation.json."""
    from reefmap.api import evaluate as run_evaluate

    r = run_evaluate(run_dir, truth_dir)
    cover, traj, cloud, labels = r["cover"], r["trajectory"], r["cloud"], r["labels_3d"]
    click.echo(f"cover error        max {cover['max_abs_error_pts']:.2f} pts, mean {cover['mean_abs_error_pts']:.2f} pts")
    for name, row in sorted(cover["per_class"].items(), key=lambda kv: -abs(kv[1]["error_pts"]))[:8]:
        click.echo(f"  {name:<30} run {row['run']:6.2f}  truth {row['truth']:6.2f}  error {row['error_pts']:+.2f}")
    click.echo(f"trajectory         ATE {traj['ate_rmse_m']:.4f} m = {traj['ate_percent_of_path']:.3f} % of "
               f"{traj['path_length_m']:.2f} m; scale error {traj['scale_error_percent']:.2f} %")
    click.echo(f"cloud              accuracy (median) {cloud['accuracy_median_m'] * 100:.2f} cm, "
               f"completeness {100 * (cloud['completeness'] or 0):.1f} % within {cloud['completeness_radius_m'] * 100:.0f} cm")
    if labels["accuracy"] is not None:
        click.echo(f"3D labels          accuracy {100 * labels['accuracy']:.1f} %, mIoU {100 * labels['miou']:.1f} %")
    if r["rugosity"]:
        click.echo(f"rugosity           run {r['rugosity']['run']:.3f}, truth {r['rugosity']['truth']:.3f} "
                   f"({r['rugosity']['error_percent']:+.1f} %)")
    if r["depth"]:
        d = r["depth"]
        click.echo(f"depth ({d['frames']} frames) AbsRel {d['abs_rel']:.3f} (median-scaled {d['abs_rel_median_scaled']:.3f}), "
                   f"delta<1.25 {100 * d['delta_1.25']:.1f} %")
    else:
        click.echo("depth              not measured: run `reefmap process --save-depth` to keep depth maps")
    click.echo(f"written to {run_dir / 'evaluation.json'}")


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="PNG to write.")
@click.option("--view", "direction", type=click.Choice(["top", "oblique", "side"]), default="top", show_default=True)
@click.option("--colour", "colouring", type=click.Choice(["labels", "rgb", "confidence"]), default="labels",
              show_default=True)
@click.option("--size", default="1600x900", show_default=True, callback=_parse_size)
@click.option("--point-size", type=float, default=2.0, show_default=True)
def snapshot(source, out, direction, colouring, size, point_size):
    """Render SOURCE (a run folder or a .ply/.pcd cloud) to a PNG without a display, with legend and scale bar."""
    from reefmap.api import snapshot as render_snapshot

    click.echo(f"wrote {render_snapshot(source, out, direction, colouring, size, point_size)}")


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--colour", "colouring", type=click.Choice(["labels", "rgb", "confidence", "views"]), default="labels",
              show_default=True)
@click.option("--point-size", type=float, default=2.0, show_default=True)
@click.option("--keys", default="", help="Keys to apply after opening, e.g. 'O1P' (oblique, hide class 1, path).")
@click.option("--screenshot", type=click.Path(path_type=Path), help="Save the view to this PNG and close.")
def view(source, colouring, point_size, keys, screenshot):
    """Open SOURCE (a run folder or a .ply/.pcd cloud) in the Open3D viewer; press H for the keys."""
    from reefmap.api import view as open_viewer

    open_viewer(source, colouring, point_size, keys, screenshot)


@main.group()
def train():
    """Train the segmentation or the depth/pose network."""


def _training_log(path: Path | None):
    def log(message: str) -> None:
        click.echo(message)
        if path:
            with open(path, "a") as f:
                f.write(message + "\n")
    return log


def _training_command(cls):
    """A trainer's command: DATA, --out and --log, then an option for every field of its settings `cls`."""
    def decorate(command):
        command = setting_options(cls)(command)
        for option in reversed([
            click.argument("data", nargs=-1, required=True, type=click.Path(path_type=str)),
            click.option("-o", "--out", required=True, type=click.Path(path_type=str), cls=StagedOption,
                         stage="output", help="Weights file to write (.safetensors); its card is written beside it."),
            click.option("--log", "log_path", type=click.Path(path_type=Path), cls=StagedOption, stage="output",
                         help="Also append progress lines here."),
        ]):
            command = option(command)
        return command
    return decorate


@train.command("segmentation", cls=StagedCommand)
@_training_command(SegmentationTraining)
def train_segmentation_command(data, out, log_path, **options):
    """Train the U-Net on DATA: `reefmap synth` folders (dense labels), folders of images with label masks
    (Coralscapes/Cityscapes layout leftImg8bit/ + gtFine/, or images/ + masks/; mask values are class ids unless
    --label-map maps them), and/or folders of images with CoralNet point annotations (annotations.csv:
    Name,Row,Column,Label, or a CoralNet export: images/ + annotations/*.csv + labelset.csv, whose labels map to
    classes through reefmap/data/labelmaps/coralnet.json; a fixed quarter of the photos is kept for validation)."""
    from reefmap.api import train_segmentation

    train_segmentation(list(data), out, log=_training_log(log_path), **options)


@train.command("depth", cls=StagedCommand)
@_training_command(DepthPoseTraining)
def train_depth_command(data, out, log_path, **options):
    """Train the depth and pose networks on DATA: `reefmap synth` folders (supervised by their truth)
    and/or dive videos (self-supervised by view synthesis)."""
    from reefmap.api import train_depth

    train_depth(list(data), out, log=_training_log(log_path), **options)


@main.group()
def weights():
    """See, inspect and install model weights."""


@weights.command("list")
def weights_list():
    """Weights found in the search folders; * marks the default of each task."""
    from reefmap.api import installed_weights

    folders, found = installed_weights()
    click.echo("search order: " + ", ".join(str(d) for d in folders))
    if not found:
        click.echo("no weights installed: see `reefmap weights install --help` or `reefmap train --help`")
    for w in found:
        card = w.card
        model = card.get("encoder") or f"{card.get('depth_encoder')} / {card.get('pose_encoder')}"
        data = (card.get("training") or {}).get("kind", "unknown data")
        click.echo(f"{'*' if w.is_default else ' '} {card.get('task', '?'):<12} {model:<40} {w.path}  ({data})")


@weights.command("import-deepreefmap")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--classes", required=True, type=click.Path(path_type=Path),
              help="The class list the checkpoint was trained with (DeepReefMap's classes YAML, or a reefmap taxonomy).")
@click.option("-o", "--out", type=click.Path(path_type=Path),
              help="Where to write the converted weights [default: the user's weights folder].")
@click.option("--input-size", default="640x384", show_default=True, callback=_parse_size,
              help="WIDTHxHEIGHT the model sees (DeepReefMap used 1280x768: slower, finer).")
def weights_import_deepreefmap(checkpoint, classes, out, input_size):
    """Convert DeepReefMap's 2024 segmentation checkpoint (a plain state dict of an smp DeepLabV3+ on ResNeXt-50)
    into reefmap's format; it is read as tensors only, never run as code."""
    from reefmap.api import import_deepreefmap

    path = import_deepreefmap(checkpoint, classes, out, input_size)
    click.echo(f"wrote {path} and its card; use it with: reefmap process VIDEO --seg-weights {path}")


@weights.command("show")
@click.argument("path", type=click.Path(path_type=Path))
def weights_show(path):
    """The card of a weights file and its SHA-256 (training history left out)."""
    import json

    from reefmap.api import weights_card

    card, sha256 = weights_card(path)
    click.echo(json.dumps(card, indent=1))
    click.echo(f"sha256 {sha256}  ({path.stat().st_size / 1e6:.1f} MB)")


@weights.command("install")
@click.argument("source")
@click.option("--sha256", help="Refuse the file unless its SHA-256 is this.")
@click.option("--name", help="Install under this name instead of replacing the task's default.")
@click.option("--input-width", type=click.IntRange(min=32), default=2048, show_default=True,
              help="SegFormer only: frames are resized to this width (pixels) before the windows are cut.")
@click.option("--window", default="1024x1024", show_default=True, callback=_parse_size,
              help="SegFormer only: WIDTHxHEIGHT of each window, the network's training crop.")
@click.option("--stride", default="768x768", show_default=True, callback=_parse_size,
              help="SegFormer only: WIDTHxHEIGHT step between windows (smaller than the window: they overlap).")
def weights_install(source, sha256, name, input_width, window, stride):
    """Install SOURCE: a .safetensors path or URL (its .json card is fetched beside it), a SegFormer from the
    Hugging Face hub as hf:OWNER/NAME[@REVISION] (e.g. hf:EPFL-ECEO/segformer-b2-finetuned-coralscapes-1024-1024),
    or a local snapshot folder of one. Without --name it becomes the default for its task."""
    from reefmap.api import HUB_PREFIX, install_weights

    if source.startswith(HUB_PREFIX):
        click.echo(f"fetching {source} through the Hugging Face hub's cache")
    click.echo(f"installed {install_weights(source, sha256, name, input_width, window, stride)}")


def run() -> None:
    """Console entry point: user errors become one line on stderr and exit 1 (runtime) or 2 (usage)."""
    warnings.showwarning = lambda message, *args, **kwargs: print(f"reefmap: warning: {message}", file=sys.stderr)
    if len(sys.argv) <= 1:
        sys.argv.append("--help")
    try:
        main.main(standalone_mode=False)
    except ReefmapError as exc:
        _fail(str(exc), exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "reefmap"
        _fail(f"{exc.format_message()} (see '{command} --help')", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail("interrupted; no outputs were finished", 130)
    except Exception as exc:
        if os.environ.get("REEFMAP_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with REEFMAP_DEBUG=1 for the traceback and report it", 1)


def _fail(message: str, code: int) -> None:
    print(f"reefmap: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)
