"""`reefmap weights import-deepreefmap`: a state dict with the reference checkpoint's keys and shapes, built here,
becomes reefmap weights that give the same outputs; files that need code to load are refused."""

import json

import numpy as np
import pytest
import torch
import yaml

from reefmap.models.weights import load_weights
from reefmap.perception.networks import Segmenter
from reefmap.taxonomy import default_taxonomy
from test_process import run_cli


class _RunsCode:
    """Pickles as a call: a plain torch.load would create `marker`, the weights-only loader must refuse."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def reference_checkpoint(tmp_path_factory):
    """An smp DeepLabV3+ on resnext50_32x4d with 38 outputs, saved as the reference system saved it."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    model = smp.DeepLabV3Plus(encoder_name="resnext50_32x4d", encoder_weights=None, classes=38).eval()
    folder = tmp_path_factory.mktemp("deepreefmap")
    torch.save(model.state_dict(), folder / "segmentation_2024.pth")
    classes = [{"id": c.id, "name": c.name, "color": list(c.colour), "roles": sorted(c.roles)}
               for c in default_taxonomy().classes[:37]]
    (folder / "classes.yaml").write_text(yaml.safe_dump({"classes": classes}))
    return model, folder


def test_imported_checkpoint_predicts_as_the_original(reference_checkpoint, tmp_path, monkeypatch, capsys):
    model, folder = reference_checkpoint
    out = tmp_path / "imported.safetensors"
    code, stdout, err = run_cli(monkeypatch, capsys, "weights", "import-deepreefmap", folder / "segmentation_2024.pth",
                                "--classes", folder / "classes.yaml", "--out", out, "--input-size", "320x192")
    assert code == 0, err
    assert f"--seg-weights {out}" in stdout
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["architecture"] == "deeplabv3plus" and card["normalisation"]["mean"] == [0.45] * 3
    names = [c["name"] for c in card["taxonomy"]["classes"]]
    assert len(names) == 38 and names[0] == "unlabeled" and names[1:] == [c.name for c in default_taxonomy().classes[:37]]
    unlabeled = card["taxonomy"]["classes"][0]
    assert unlabeled["id"] == 38 and set(unlabeled["roles"]) == {"ignore_in_cover", "ignore_in_cloud"}
    segmenter = Segmenter(load_weights(out, "segmentation"), torch.device("cpu"))
    image = np.random.default_rng(0).integers(0, 255, (192, 320, 3), dtype=np.uint8)
    ours = segmenter.probabilities([image])[0]
    x = (torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0 - 0.45) / 0.225
    with torch.no_grad():
        theirs = torch.softmax(model(x), dim=1)[0].numpy()
    assert ours.shape == theirs.shape == (38, 192, 320)
    assert np.abs(ours - theirs).max() < 0.02  # fp16 storage
    assert (ours.argmax(0) == theirs.argmax(0)).mean() > 0.98


def test_a_checkpoint_that_needs_code_is_refused_and_wrong_classes_are_named(reference_checkpoint, tmp_path,
                                                                            monkeypatch, capsys):
    _, folder = reference_checkpoint
    pickled = tmp_path / "with_code.pth"
    marker = tmp_path / "code_ran"
    torch.save({"state_dict": _RunsCode(marker)}, pickled)
    code, _, err = run_cli(monkeypatch, capsys, "weights", "import-deepreefmap", pickled, "--classes",
                           folder / "classes.yaml", "--out", tmp_path / "x.safetensors")
    assert code == 1 and err.count("\n") == 1 and "without running any code" in err
    assert not marker.exists()
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump({"classes": yaml.safe_load((folder / "classes.yaml").read_text())["classes"][:20]}))
    code, _, err = run_cli(monkeypatch, capsys, "weights", "import-deepreefmap", folder / "segmentation_2024.pth",
                           "--classes", short, "--out", tmp_path / "y.safetensors")
    assert code == 1 and "38 outputs but the class list has 20 classes" in err
    assert not list(tmp_path.glob("*.safetensors"))
