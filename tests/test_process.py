"""End-to-end runs of `reefmap process` and the bad-input matrix of the command line."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_video
from reefmap.cli import run as cli_run


def run_cli(monkeypatch, capsys, *args):
    """Call the console entry point in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["reefmap", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        cli_run()
        sys.exit(0)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def weights_args(tiny_weights):
    return ["--seg-weights", tiny_weights["segmentation"], "--depth-weights", tiny_weights["depth_pose"]]


def test_real_clip_end_to_end(real_clip, tiny_weights, tmp_path):
    """The real command on the first second of the real GoPro clip, as a user runs it."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "reefmap", "process", str(real_clip), "--end", "0:01", "--fps", "5",
         "--out", str(out), "--quiet", *map(str, weights_args(tiny_weights))],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("cloud.ply", "cloud.laz", "cover.csv", "cover_segments.csv", "trajectory.csv", "ortho_labels.png", "ortho_rgb.png",
                 "summary.json"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".reefmap-partial*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 5
    assert summary["camera"]["native"]["name"] == "gopro_hero10_linear"
    assert summary["levelled_by"].startswith("gravity")
    assert summary["processing_size"] == [640, 360]
    assert set(summary["timings"]["stages"]) >= {"decode", "segmentation", "tape", "depth", "pose", "fusion", "cover",
                                                 "write"}
    assert len(summary["weights"]["segmentation"]["sha256"]) == 64
    assert summary["mapping"]["requested"] == "auto"  # the default; one second holds too few keyframes for SfM
    assert summary["mapping"]["frames_placed"] == {"pose_network": 5}
    assert any("3 keyframes are too few for structure from motion (it needs 6" in w for w in summary["warnings"])
    trust = summary["trust"]  # tiny random weights, never scored on real imagery, on a learned camera path
    assert trust["overall"] == "do not use" and trust["parts"]["segmentation"]["level"] == "do not use"
    assert trust["parts"]["geometry"]["level"] in ("check", "do not use")

    from reefmap.runtime.o3d import open3d
    cloud = open3d().t.io.read_point_cloud(str(out / "cloud.ply"))
    assert {"label", "confidence", "n_views"} <= set(cloud.point)
    labels = cloud.point.label.numpy().ravel()
    assert len(labels) == summary["map"]["points"] > 0
    assert not np.isin(labels, [7, 8, 9, 13]).any()  # classes kept out of the cloud

    with open(out / "cover.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 39
    tape_row, = (r for r in rows if r["class_name"] == "transect line")
    assert float(tape_row["percent_cover"]) > 0  # the line detector puts the clip's tape in the map
    counted = [float(r["percent_cover"]) for r in rows if r["excluded"] == "0"]
    assert sum(counted) == pytest.approx(100.0, abs=0.1)
    assert all(r["percent_cover"] == "" for r in rows if r["excluded"] == "1")


def test_python_api_on_synthetic_video(tiny_weights, tmp_path):
    import reefmap

    video = write_video(tmp_path / "v.avi", n_frames=12, fps=6.0)
    result = reefmap.process(video, tmp_path / "out", fps=6, quiet=True, seg_weights=tiny_weights["segmentation"],
                             depth_weights=tiny_weights["depth_pose"], batch_size=5)
    assert result.summary.frames_processed == 12
    assert result.cloud_path.exists() and len(result.cloud) == result.summary.map["points"]
    counted = [r.percent for r in result.cover if not r.excluded]
    assert sum(counted) == pytest.approx(100.0, abs=0.1)
    assert result.summary.levelled_by.startswith("seabed plane")  # no telemetry in this file
    with open(result.out_dir / "cover_segments.csv") as f:
        rows = list(csv.DictReader(f))
    by_segment = {}
    for r in rows:
        by_segment[r["segment"]] = by_segment.get(r["segment"], 0.0) + float(r["percent_cover"] or 0)
    assert by_segment and all(total == pytest.approx(100.0, abs=0.1) for total in by_segment.values())


def test_no_tape_detection_leaves_the_tape_to_the_network(monkeypatch, capsys, tiny_weights, tmp_path):
    video = write_video(tmp_path / "v.avi", n_frames=4, fps=4.0)
    code, _, err = run_cli(monkeypatch, capsys, "process", video, "--out", tmp_path / "out", "--fps", 4, "--quiet",
                           "--no-tape-detection", *weights_args(tiny_weights))
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["settings"]["detect_tape"] is False and "tape" not in summary["timings"]["stages"]


def test_coralnet_exports_match_the_ortho_map(tmp_path):
    """points.csv labels are the classes drawn at those pixels of ortho_labels.png; percent_covers rows sum to 100."""
    import cv2

    from reefmap.synthetic.dataset import SynthSettings, synthesize
    from reefmap.taxonomy import default_taxonomy
    import reefmap

    truth = tmp_path / "synth"
    synthesize(truth, SynthSettings(seed=4, length_m=2.0, fps=4.0, size=(320, 180)), quiet=True)
    run = tmp_path / "run"
    reefmap.process(truth / "video.mp4", run, fps=4, oracle=str(truth), quiet=True, point_segment_length=0.5)
    ortho = cv2.imread(str(run / "ortho_labels.png"))[..., ::-1]
    colour_of = {c.name: list(c.colour) for c in default_taxonomy().classes}
    with open(run / "points.csv") as f:
        points = list(csv.DictReader(f))
    assert len(points) % 50 == 0 and len(points) >= 150
    assert all(ortho[int(p["Row"]), int(p["Column"])].tolist() == colour_of[p["Label"]] for p in points)
    with open(run / "percent_covers.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["Image ID", "Image name", "Annotation status", "Points"] and rows[-1][1] == "ALL IMAGES"
    assert all(sum(map(float, r[4:])) == pytest.approx(100.0, abs=0.01) for r in rows[1:])


def test_no_default_weights_refuses_clearly(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("REEFMAP_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("reefmap.models.weights.weights_dirs", lambda: [tmp_path / "empty"])
    video = write_video(tmp_path / "v.avi", n_frames=3)
    code, _, err = run_cli(monkeypatch, capsys, "process", video, "--out", tmp_path / "out", "-q")
    assert code == 1
    assert "no segmentation weights installed" in err and "--seg-weights" in err
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "clip.avi", n_frames=20, fps=10.0)


@pytest.mark.parametrize("case, code, message", [
    ("missing", 2, "video not found"),
    ("not_a_video", 1, "not a video"),
    ("empty_video", 1, "no video frames|not a video"),
    ("start_after_end", 2, "not before"),
    ("start_past_end", 2, "past the end"),
    ("unwritable_out", 1, "cannot write to output folder"),
    ("unknown_device", 2, "unknown --device"),
    ("wrong_weights", 1, "holds depth_pose weights"),
    ("unknown_option", 2, "No such option"),
    ("bad_time", 2, "mm:ss"),
])
def test_bad_input_gives_one_line_and_no_outputs(monkeypatch, capsys, tmp_path, tiny_weights, video, case, code, message):
    out = tmp_path / "out"
    args = ["process", video, "--out", out, "-q", *weights_args(tiny_weights)]
    if case == "missing":
        args[1] = tmp_path / "nope.mp4"
    elif case == "not_a_video":
        args[1] = tmp_path / "notes.mp4"
        args[1].write_text("field notes, not a video")
    elif case == "empty_video":
        args[1] = tmp_path / "empty.avi"
        args[1].write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST")
    elif case == "start_after_end":
        args += ["--start", "1:00", "--end", "0:30"]
    elif case == "start_past_end":
        args += ["--start", "10"]
    elif case == "unwritable_out":
        blocker = tmp_path / "file.txt"
        blocker.write_text("x")
        args[3] = blocker / "sub"
    elif case == "unknown_device":
        args += ["--device", "tpu"]
    elif case == "wrong_weights":
        args += ["--seg-weights", tiny_weights["depth_pose"]]
    elif case == "unknown_option":
        args += ["--colour", "red"]
    elif case == "bad_time":
        args += ["--end", "soon"]
    exit_code, _, err = run_cli(monkeypatch, capsys, *args)
    assert exit_code == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reefmap: error: "), err
    assert "Traceback" not in err
    import re
    assert re.search(message, lines[0]), lines[0]
    assert not (out / "summary.json").exists() and not (out / "cover.csv").exists()


def test_synth_then_oracle_then_evaluate_from_the_command_line(monkeypatch, capsys, tmp_path):
    truth = tmp_path / "synth"
    code, out, err = run_cli(monkeypatch, capsys, "synth", "--out", truth, "--length-m", "1.5", "--size", "256x144",
                             "--fps", "4", "--seed", "3", "-q")
    assert code == 0, err
    assert (truth / "truth.json").exists() and (truth / "video.mp4").exists()
    code, out, err = run_cli(monkeypatch, capsys, "process", truth / "video.mp4", "--fps", "4", "--oracle", truth,
                             "--out", tmp_path / "run", "-q")
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", tmp_path / "run", "--truth", truth)
    assert code == 0, err
    assert "cover error" in out and "ATE" in out and (tmp_path / "run" / "evaluation.json").exists()


@pytest.mark.parametrize("args, message", [
    (["synth", "--out", "X", "--scene", "moon"], "'moon' is not one of 'mixed'"),
    (["synth", "--out", "X", "--size", "big"], "WIDTHxHEIGHT"),
    (["synth", "--out", "X", "--length-m", "0.1"], "between 1 and 200"),
    (["process", "V", "--oracle", "NOWHERE"], "not a `reefmap synth` folder"),
    (["evaluate", "NOWHERE", "--truth", "NOWHERE"], "not a finished"),
])
def test_synth_and_evaluate_bad_input(monkeypatch, capsys, tmp_path, video, args, message):
    args = [str(tmp_path / a) if a in ("X", "NOWHERE") else str(video) if a == "V" else a for a in args]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_second_run_on_the_same_output_folder_is_refused(tmp_path):
    from reefmap.errors import OutputError
    from reefmap.io.files import StagedOutputs

    first = StagedOutputs(tmp_path / "out")
    with pytest.raises(OutputError, match="another reefmap run is writing"):
        StagedOutputs(tmp_path / "out")
    first.discard()
    StagedOutputs(tmp_path / "out").discard()  # free again once the first is done
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".reefmap.lock"]


def test_non_ascii_paths(tiny_weights, tmp_path):
    import reefmap

    folder = tmp_path / "récif_été"
    folder.mkdir()
    video = write_video(folder / "plongée.avi", n_frames=6, fps=6.0)
    result = reefmap.process(video, folder / "sortie", fps=6, quiet=True, seg_weights=tiny_weights["segmentation"],
                             depth_weights=tiny_weights["depth_pose"])
    assert (folder / "sortie" / "summary.json").exists() and result.summary.frames_processed == 6


def test_non_finite_network_outputs_are_neutralised_and_counted(tiny_weights, tmp_path, monkeypatch):
    import reefmap
    from reefmap.perception.networks import DepthPoseEstimator, Segmenter

    real_probabilities, real_poses = Segmenter.probabilities, DepthPoseEstimator.relative_poses

    def nan_probabilities(self, images):
        out = real_probabilities(self, images)
        out[0, :, :4, :4] = np.nan  # a corner of the first frame of every batch
        return out

    def nan_poses(self, batch):
        return [None if p is None else np.full((4, 4), np.nan) for p in real_poses(self, batch)]

    monkeypatch.setattr(Segmenter, "probabilities", nan_probabilities)
    monkeypatch.setattr(DepthPoseEstimator, "relative_poses", nan_poses)
    video = write_video(tmp_path / "v.avi", n_frames=8, fps=8.0)
    result = reefmap.process(video, tmp_path / "out", fps=8, quiet=True, batch_size=4, smooth_labels=False,
                             seg_weights=tiny_weights["segmentation"], depth_weights=tiny_weights["depth_pose"])
    health = result.summary.network_health
    assert health["frames_with_non_finite_labels"] == 2 and health["non_finite_motions"] == 7
    assert np.isfinite(result.cloud.points).all()


def test_shipped_default_weights_run_with_no_flags(tmp_path, monkeypatch):
    """A fresh clone maps a video with the weights in weights/ and no weight options."""
    from pathlib import Path

    import reefmap

    monkeypatch.setenv("REEFMAP_WEIGHTS", str(tmp_path / "no_user_weights"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    video = write_video(tmp_path / "v.avi", n_frames=6, fps=6.0, size=(320, 180))
    result = reefmap.process(video, tmp_path / "out", fps=6, quiet=True)
    repo_weights = Path(__file__).resolve().parents[1] / "weights"
    for task in ("segmentation", "depth_pose"):
        assert Path(result.summary.weights[task]["path"]).parent == repo_weights
    assert result.summary.units.startswith("metres")
