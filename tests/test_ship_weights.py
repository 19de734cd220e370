import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from reefmap.models.weights import load_weights, sha256_file
from reefmap.train.segmentation import SegmentationTraining, train_segmentation

SHIP = Path(__file__).resolve().parents[1] / "tools" / "ship_weights.py"
RENDER = "reefmap synth --out transect --seed 11 --length-m 3 --fps 5"


def test_shipped_card_is_relative_and_chains_to_the_weights_it_started_from(tiny_weights, synthetic_transect, tmp_path,
                                                                            monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_weights["segmentation"].with_suffix(suffix), weights / f"segmentation{suffix}")
    start_sha = sha256_file(weights / "segmentation.safetensors")
    trained = tmp_path / "train" / "seg.safetensors"
    root = synthetic_transect.parent
    monkeypatch.setattr(sys, "argv", ["/somewhere/.venv/bin/reefmap", "train", "segmentation", str(synthetic_transect),
                                      "--init", str(weights / "segmentation.safetensors"), "--out", str(trained),
                                      "--log", str(tmp_path / "train.log")])
    train_segmentation(SegmentationTraining(data=[str(synthetic_transect)], out=str(trained),
                                            init=str(weights / "segmentation.safetensors"), input_width=128,
                                            crop=(96, 64), iterations=2, batch_size=2, threads=1), log=lambda m: None)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"data": [str(synthetic_transect)], "segmentation": {
        "weights": str(trained), "frames": 3, "pixel_accuracy": 0.5, "miou": 0.25, "iou": {"sand": 0.25}}}))

    def ship(*extra):
        return subprocess.run([sys.executable, str(SHIP), str(trained), "--data-root", str(root), "--held-out",
                               str(bench), "--runs", "a test run", "--code-commit", "abc1234", "--weights-dir",
                               str(weights), *extra], capture_output=True, text=True)

    refused = ship()  # the render command of the training folder is unknown
    assert refused.returncode != 0 and "--data-command" in refused.stderr.strip().splitlines()[-1]
    assert sha256_file(weights / "segmentation.safetensors") == start_sha  # nothing shipped
    done = ship("--data-command", RENDER)
    assert done.returncode == 0, done.stderr
    card = json.loads((weights / "segmentation.json").read_text())
    training = card["training"]
    assert training["settings"]["data"] == ["transect"] and training["settings"]["out"] == "segmentation.safetensors"
    assert training["settings"]["init"] == training["initialised_from"] == "weights/segmentation.safetensors"
    assert training["command"] == ("reefmap train segmentation transect --init weights/segmentation.safetensors "
                                   "--out segmentation.safetensors")
    assert training["data_commands"] == [RENDER]
    assert training["initialised_from_weights"]["sha256"] == start_sha
    assert training["code"]["commit"] == "abc1234" and training["runs"] == "a test run"
    assert card["metrics"]["held_out"] == {"data_commands": [RENDER], "command": "python tools/bench_models.py transect",
                                           "frames": 3, "pixel_accuracy": 0.5, "miou": 0.25, "iou": {"sand": 0.25}}
    assert card["sha256"] == sha256_file(weights / "segmentation.safetensors") != start_sha
    assert load_weights(weights / "segmentation.safetensors", "segmentation").card["sha256"] == card["sha256"]
    again = ship("--data-command", RENDER)  # it started from weights that are no longer the shipped ones
    assert again.returncode != 0 and "not from the shipped" in again.stderr


def test_a_fresh_start_on_photos_outside_the_data_root_ships_with_its_credits(tiny_weights, synthetic_transect,
                                                                               tmp_path, monkeypatch):
    from conftest import TINY_ENCODER
    from test_real_imagery import coralnet_export

    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_weights["segmentation"].with_suffix(suffix), weights / f"segmentation{suffix}")
    photos = coralnet_export(tmp_path / "elsewhere")
    root = synthetic_transect.parent
    trained = tmp_path / "train" / "seg.safetensors"
    monkeypatch.setattr(sys, "argv", ["reefmap", "train", "segmentation", str(synthetic_transect), str(photos),
                                      "--out", str(trained)])
    train_segmentation(SegmentationTraining(data=[str(synthetic_transect), str(photos)], out=str(trained),
                                            encoder=TINY_ENCODER, decoder_channels=(16, 16, 8, 8, 8), input_width=64,
                                            crop=(64, 32), iterations=2, batch_size=4, threads=1), log=lambda m: None)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"data": [str(synthetic_transect)], "segmentation": {
        "weights": str(trained), "frames": 3, "pixel_accuracy": 0.5, "miou": 0.25, "iou": {"sand": 0.25}}}))
    done = subprocess.run([sys.executable, str(SHIP), str(trained), "--data-root", str(root), "--held-out", str(bench),
                           "--runs", "a test run", "--data-command", RENDER, "--credit", "photos: someone, CC BY 4.0",
                           "--weights-dir", str(weights)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    card = json.loads((weights / "segmentation.json").read_text())
    relative_photos = os.path.relpath(photos, root)
    assert relative_photos.startswith("..")
    assert card["training"]["settings"]["data"] == ["transect", relative_photos]
    assert card["training"]["command"] == f"reefmap train segmentation transect {relative_photos} --out segmentation.safetensors"
    assert card["training"]["data_commands"] == [RENDER]  # photos need no render command
    assert "initialised_from_weights" not in card["training"]
    assert card["credits"] == ["photos: someone, CC BY 4.0"]
