import json
import shutil

import pytest
import torch

from reefmap.errors import WeightsError
from reefmap.models.weights import build_model, load_weights, read_card, sha256_file


def test_roundtrip_gives_the_same_network(tiny_weights):
    loaded = load_weights(tiny_weights["segmentation"], "segmentation")
    again = load_weights(tiny_weights["segmentation"], "segmentation")
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        assert torch.equal(loaded.model(x), again.model(x))
    assert loaded.sha256 == sha256_file(tiny_weights["segmentation"]) and len(loaded.sha256) == 64
    assert len(loaded.taxonomy) == 39
    state = loaded.model.state_dict()
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())


def test_stored_tensors_are_fp16(tiny_weights):
    from safetensors import safe_open

    with safe_open(str(tiny_weights["depth_pose"]), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes


def _copy(weights, tmp_path, name="w"):
    target = tmp_path / f"{name}.safetensors"
    shutil.copy(weights, target)
    shutil.copy(weights.with_suffix(".json"), target.with_suffix(".json"))
    return target


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found.*--seg-weights"):
        load_weights(tmp_path / "nothing.safetensors", "segmentation")


def test_missing_card(tiny_weights, tmp_path):
    target = _copy(tiny_weights["segmentation"], tmp_path)
    target.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="has no card"):
        load_weights(target, "segmentation")


def test_corrupt_file(tiny_weights, tmp_path):
    target = _copy(tiny_weights["segmentation"], tmp_path)
    target.write_bytes(b"\x00" * 100)
    card = json.loads(target.with_suffix(".json").read_text())
    del card["sha256"]  # a card without a hash: the damage shows when the file is parsed
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_weights(target, "segmentation")


def test_weights_for_the_other_task(tiny_weights):
    with pytest.raises(WeightsError, match="holds depth_pose weights.*--depth-weights"):
        load_weights(tiny_weights["depth_pose"], "segmentation")


def test_weights_for_the_wrong_architecture(tiny_weights, tmp_path):
    target = _copy(tiny_weights["segmentation"], tmp_path)
    card = json.loads(target.with_suffix(".json").read_text())
    card["encoder"] = "resnet18"
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="does not match the architecture"):
        load_weights(target, "segmentation")


def test_card_builds_the_network(tiny_weights):
    card = read_card(tiny_weights["depth_pose"], "depth_pose")
    model = build_model(card).eval()
    with torch.no_grad():
        depth = model.depth(torch.randn(2, 3, 64, 96))
        pose = model.pose(torch.randn(2, 6, 64, 96))
    assert depth.shape == (2, 64, 96)
    assert float(depth.min()) >= card["min_depth"] - 1e-6 and float(depth.max()) <= card["max_depth"] + 1e-4
    assert pose.shape == (2, 6)
