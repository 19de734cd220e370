"""Every `reefmap` command in the README's code blocks runs as written, on short synthetic input.

The commands are taken from README.md itself, in order. Only what a reader replaces anyway is replaced: the file
names (dive.mp4 and the rest become short synthetic clips and folders made here), the times of `--start/--end`
(the clip is 2 s long), the training length (`--time-limit-min 60` becomes two iterations), the rendered transect's
(`--length-m 20` becomes a metre of small frames) and the hub model (a
local snapshot of a tiny random SegFormer with the Coralscapes labels, run at a small width). `reefmap view`
opens a window and is left to tests/test_viewer.py, which runs it under Xvfb.
"""

import json
import re
import shlex
import shutil
from pathlib import Path

import cv2
import pytest

from test_process import run_cli
from test_real_imagery import coralnet_export
from test_segformer import write_snapshot

from reefmap.models.segformer import coralscapes_hub_labels

README = Path(__file__).resolve().parents[1] / "README.md"
TIMES = {"0:30": "0.5", "4:10": "1.8"}
TRAINING = ("--time-limit-min 60", "--iterations 2 --eval-every 2 --input-width 64")
RENDERING = ("--length-m 20", "--length-m 1 --size 128x72")
HUB_MODEL = "hf:EPFL-ECEO/segformer-b2-finetuned-coralscapes-1024-1024"


def readme_commands() -> list[str]:
    """The `reefmap ...` lines of the README's bash blocks, comments stripped."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("reefmap ")]


def cut_video(source: Path, out: Path, first: int, count: int) -> Path:
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames[first:first + count]:
        writer.write(frame)
    writer.release()
    return out


@pytest.fixture
def workspace(tmp_path, synthetic_transect, monkeypatch):
    """A folder holding what the README's commands name, as a user's would."""
    video = synthetic_transect / "video.mp4"
    cut_video(video, tmp_path / "dive.mp4", 0, 10)  # 2 s at 5 fps: too short for SfM, the pose network maps it
    cut_video(video, tmp_path / "GX010123.MP4", 0, 5)
    cut_video(video, tmp_path / "GX020123.MP4", 5, 5)
    shutil.copy(video, tmp_path / "calib_clip.mp4")  # 10 s: 20 frames at calibrate's 2 fps
    shutil.move(str(coralnet_export(tmp_path, images=8)), tmp_path / "my_coralnet_export")
    (tmp_path / "synth").mkdir()
    shutil.copytree(synthetic_transect, tmp_path / "synth" / "train_1")
    write_snapshot(tmp_path / "tiny_segformer", coralscapes_hub_labels())
    (tmp_path / "survey.csv").write_text("site,transect,video\nNorth,T1,dive.mp4\nNorth,T2,GX010123.MP4;GX020123.MP4\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REEFMAP_WEIGHTS", str(tmp_path / "user_weights"))
    monkeypatch.setenv("REEFMAP_CAMERAS", str(tmp_path / "user_cameras"))
    return tmp_path


def test_readme_names_the_tasks_it_promises():
    commands = " | ".join(readme_commands())
    for task in ("process dive.mp4", "GX010123.MP4 GX020123.MP4", "--start", "--tape-length-m", "calibrate",
                 "train segmentation", "weights install", "batch", "--ray", "view", "snapshot", "compare"):
        assert task in commands, task


def test_every_readme_command_runs(workspace, monkeypatch, capsys):
    ran = []
    for command in readme_commands():
        if command.startswith("reefmap view "):
            continue
        if command.startswith("reefmap compare "):
            shutil.copytree(workspace / "runs" / "t1", workspace / "runs" / "t1_2025")
            shutil.copytree(workspace / "runs" / "part", workspace / "runs" / "t1_2026")
        line = command.replace(*TRAINING).replace(*RENDERING).replace(HUB_MODEL, "tiny_segformer --input-width 256 --window 128x128 "
                                                            "--stride 96x96")
        args = [TIMES.get(a, a) for a in shlex.split(line)[1:]]
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code == 0, f"{command}\n{err}"
        ran.append(args[0])
    assert ran.count("process") == 6 and {"calibrate", "synth", "train", "weights", "batch", "snapshot", "compare",
                                           "render-video", "report"} <= set(ran)
    assert json.loads((workspace / "synth" / "textured_1" / "truth.json").read_text())["texture"]["photos"] == 6
    assert (workspace / "runs" / "dive" / "summary.json").exists() and (workspace / "dive_top.png").exists()
    assert (workspace / "user_weights" / "segmentation.safetensors").exists()
    assert (workspace / "runs" / "expedition" / "survey.csv").exists()
    segformer_run = json.loads((workspace / "runs" / "dive_segformer" / "summary.json").read_text())
    assert segformer_run["weights"]["segmentation"]["card"]["architecture"] == "segformer"
