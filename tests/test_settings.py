"""One place for settings: each stage's dataclass fields carry default, unit and help, and the CLI options are made
from them (same names, same defaults), grouped by stage in --help."""

import click
import pytest

from test_process import run_cli

import reefmap
from reefmap.cli import main
from reefmap.config import (
    CALIBRATION_MODELS, MAPPINGS, PER_TRANSECT, SCENES, CalibrationSettings, DepthPoseTraining, ProcessConfig,
    SegmentationTraining, SynthSettings, command_settings,
)
from reefmap.errors import UsageError


COMMANDS = [(("process",), ProcessConfig, ()), (("batch",), ProcessConfig, PER_TRANSECT),
            (("synth",), SynthSettings, ()), (("calibrate",), CalibrationSettings, ()),
            (("train", "segmentation"), SegmentationTraining, ()), (("train", "depth"), DepthPoseTraining, ())]


def command(path: tuple[str, ...]) -> click.Command:
    found = main
    for name in path:
        found = found.commands[name]
    return found


def cli_value(default):
    return "x".join(map(str, default)) if isinstance(default, tuple) else default


@pytest.mark.parametrize("path, settings, skipped", COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS])
def test_every_setting_is_an_option_with_its_default_and_help(path, settings, skipped):
    options = {p.name: p for p in command(path).params if isinstance(p, click.Option)}
    for f in command_settings(settings):
        if f.name in skipped:
            assert f.name not in options or f.name == "quiet", f.name
            continue
        assert f.metadata["help"].strip() and f.metadata["stage"], f.name
        assert options[f.name].default == cli_value(f.default), f.name
        assert options[f.name].stage == f.metadata["stage"]


def test_help_lists_the_options_stage_by_stage(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "process", "--help")
    assert code == 0
    sections = [line for line in out.splitlines() if line.endswith(" options:")]
    assert sections[:4] == ["Output options:", "Input options:", "Perception options:", "Camera path options:"]
    assert sections[-1] == "Other options:"
    camera_path = out.split("Camera path options:")[1].split("Map options:")[0]
    assert "--mapping [auto|sfm|learned]" in camera_path and "[keyframes/s]" in camera_path


def test_choices_are_those_the_stages_accept():
    from reefmap.io.calibration import MODELS
    from reefmap.synthetic.dataset import PRESETS

    assert set(SCENES) == set(PRESETS) and set(CALIBRATION_MODELS) == set(MODELS)
    assert MAPPINGS[0] == ProcessConfig.mapping


def test_cli_values_reach_the_settings_as_typed():
    context = command(("synth",)).make_context("synth", ["--out", "x", "--size", "320x180", "--speed", "0.5"])
    assert context.params["size"] == (320, 180) and context.params["speed_mps"] == 0.5
    context = command(("process",)).make_context("process", ["v.mp4", "--no-smoothing", "--width", "0", "-q"])
    config = ProcessConfig(**{k: v for k, v in context.params.items() if k not in ("videos", "out")})
    assert config.smooth_labels is False and config.width is None and config.quiet is True
    context = command(("train", "segmentation")).make_context("segmentation", ["d", "-o", "w", "--points-only"])
    assert context.params["spread_points"] is False


def test_unknown_api_settings_are_one_clear_error(tmp_path):
    with pytest.raises(UsageError, match=r"unknown setting\(s\) \['speed'\]"):
        reefmap.synth(tmp_path, speed=1.0)
    with pytest.raises(UsageError, match=r"unknown setting\(s\) \['frames_per_second'\]"):
        reefmap.process("dive.mp4", tmp_path, frames_per_second=5)
