"""Training on real imagery: the ImageNet start, CoralNet exports and their label map, the fixed validation split,
scores at expert points, temperature calibration and distillation."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import TINY_ENCODER
from reefmap.errors import UsageError
from reefmap.taxonomy import default_taxonomy

CORALNET = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "coralnet_mcr_lter"
ANNOTATION_HEADER = "Name,Row,Column,Label,Annotator"
LABELSET = """,Label_ID,Label_URL,Name,Short_Code,Functional_Group
0,74,https://coralnet.ucsd.edu/label/74/,Porites,Porit,Hard coral
1,84,https://coralnet.ucsd.edu/label/84/,Sand,Sand,Soft Substrate
2,85,https://coralnet.ucsd.edu/label/85/,Off,Off,Other
3,99999,https://coralnet.ucsd.edu/label/99999/,Some new coral,Newco,Hard coral
"""


def coralnet_export(root: Path, images: int = 8, size: int = 64) -> Path:
    """A CoralNet export: images/, annotations/<image>.csv (left half Porites, right half sand, one Off point)."""
    folder = root / "export"
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    (folder / "labelset.csv").write_text(LABELSET)
    for k in range(images):
        image = np.zeros((size, size, 3), np.uint8)
        image[:, : size // 2] = (60, 120, 200)
        image[:, size // 2:] = (170, 200, 210)
        name = f"quadrat_{k}.jpg"
        cv2.imwrite(str(folder / "images" / name), image)
        rows = [ANNOTATION_HEADER] + [f"{name},{r},{c},{'Porit' if c < size // 2 else 'Sand'},Imported"
                                      for r in (5, 30, 55) for c in (4, 20, 40, 60)]
        rows.append(f"{name},2,2,Off,Imported")
        (folder / "annotations" / f"quadrat_{k}.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_imagenet_encoder_loads_exactly_the_packaged_tensors():
    from reefmap.models.pretrained import imagenet_weights_file, load_imagenet_encoder
    from reefmap.models.unet import build_unet

    unet = build_unet("tf_efficientnet_lite0", 39, (16, 16, 8, 8, 8))
    provenance = load_imagenet_encoder(unet, "tf_efficientnet_lite0")
    packaged = torch.load(imagenet_weights_file("tf_efficientnet_lite0"), map_location="cpu", weights_only=True)
    assert torch.equal(unet.encoder.model.conv_stem.weight, packaged["_conv_stem.weight"])
    assert torch.equal(unet.encoder.model.blocks[6][0].conv_pwl.weight, packaged["_blocks.15._project_conv.weight"])
    assert provenance["licence"] == "Apache-2.0" and provenance["tensors"] == 288 and len(provenance["sha256"]) == 64
    with pytest.raises(UsageError, match="no ImageNet weights are known"):
        load_imagenet_encoder(build_unet(TINY_ENCODER, 39, (16, 16, 8, 8, 8)), TINY_ENCODER)


def test_coralnet_export_maps_through_global_label_ids_and_groups(tmp_path):
    from reefmap.io.points import is_point_folder, point_label_map
    from reefmap.train.data import load_point_annotations

    taxonomy = default_taxonomy()
    folder = coralnet_export(tmp_path)
    assert is_point_folder(folder)
    label_map = point_label_map(folder, taxonomy)
    ids = {c.name: c.id for c in taxonomy.classes}
    assert label_map["Porit"] == ids["massive/meandering alive"] and label_map["Sand"] == ids["sand"]
    assert label_map["Off"] is None  # not a benthic point
    assert label_map["Newco"] == ids["other coral alive"]  # an unknown label falls back to its functional group
    data = load_point_annotations(folder, label_map, 32)
    assert data.images.shape == (8, 32, 32, 3)
    assert (data.labels > 0).sum() == 8 * 12  # the Off points are not labels
    assert len(data.validation) == 2 and len(set(data.validation)) == 2
    (folder / "labelset.csv").write_text(LABELSET.replace("Hard coral\n", "Unheard-of group\n", 1).replace(
        "74,https://coralnet.ucsd.edu/label/74/,Porites", "74000,https://coralnet.ucsd.edu/label/74000/,Poritos"))
    with pytest.raises(UsageError, match="has no class"):
        point_label_map(folder, taxonomy)


def test_validation_split_is_fixed_by_name_and_stable_when_images_are_added():
    from reefmap.io.points import validation_images

    names = [f"img_{k}.jpg" for k in range(16)]
    held_out = validation_images(names)
    assert len(held_out) == 4 and held_out == validation_images(list(reversed(names)))
    grown = validation_images(names + [f"new_{k}.jpg" for k in range(4)])
    assert len(grown) == 5 and len(held_out - grown) <= 1  # at most the one pushed out by a lower hash
    assert validation_images(names[:3]) == set()  # too few to hold any out


def test_point_scores_by_class_group_and_cover():
    from reefmap.train.point_scores import point_scores

    taxonomy = default_taxonomy()
    index = {c.name: k for k, c in enumerate(taxonomy.classes)}
    live, sand, algae, dead = (index[n] for n in ("massive/meandering alive", "sand", "algae covered substrate",
                                                  "massive/meandering dead"))
    truth = np.array([live, live, live, sand, algae, live, sand, algae])
    predicted = np.array([live, index["branching alive"], sand, sand, dead, live, sand, sand])
    image = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = point_scores(truth, predicted, image, taxonomy)
    assert scores["point_accuracy"] == pytest.approx(4 / 8)
    assert scores["grouped_point_accuracy"] == pytest.approx(6 / 8)  # branching alive is live; dead is hard bottom
    assert scores["accuracy_by_class"]["massive/meandering alive"] == {"points": 4, "accuracy": 0.5}
    # image 0: live 75 % true, 50 % predicted; image 1: 25 % and 25 %
    assert scores["live_coral_cover_error_points"] == pytest.approx(12.5)


def test_temperature_scaling_softens_an_overconfident_network():
    from reefmap.train.segmentation import fit_temperature, softmax

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 4000)
    right = rng.random(4000) < 0.7  # 70 % right, with logits that claim ~99 %
    predicted = np.where(right, truth, (truth + 1) % 4)
    logits = np.zeros((4000, 4))
    logits[np.arange(4000), predicted] = 5.0
    calibration = fit_temperature(logits, truth)
    assert calibration["temperature"] > 2
    assert calibration["ece_after"] < 0.05 < calibration["ece_before"]
    assert softmax(logits / calibration["temperature"]).max(1).mean() == pytest.approx(0.7, abs=0.05)


def test_segmenter_divides_logits_by_the_card_temperature(tiny_weights):
    from reefmap.models.weights import load_weights
    from reefmap.perception.networks import Segmenter

    weights = load_weights(tiny_weights["segmentation"], "segmentation")
    image = np.random.default_rng(0).integers(0, 255, (96, 160, 3), np.uint8)
    plain = Segmenter(weights, torch.device("cpu")).probabilities([image])
    hot = Segmenter(type(weights)(weights.model, {**weights.card, "calibration": {"temperature": 4.0}}, weights.path,
                                  weights.sha256), torch.device("cpu")).probabilities([image])
    expected = np.exp(np.log(plain) / 4.0)  # softmax(logits / 4), as the shift of log-softmax cancels
    assert np.allclose(hot, expected / expected.sum(1, keepdims=True), atol=1e-5)
    assert hot.max(1).mean() < plain.max(1).mean()


def test_photos_and_synthetic_train_together_with_a_teacher(synthetic_transect, tmp_path):
    from reefmap.models.weights import PER_IMAGE_NORMALISATION, build_model, load_weights, save_weights
    from reefmap.models.weights import segmentation_card
    from reefmap.train.segmentation import SegmentationTraining, train_segmentation

    card = segmentation_card(TINY_ENCODER, default_taxonomy(), (64, 64), (16, 16, 8, 8, 8), {"data": "test"},
                             normalisation=PER_IMAGE_NORMALISATION, calibration={"temperature": 2.0})
    teacher = save_weights(build_model(card), card, tmp_path / "teacher.safetensors")
    out = tmp_path / "student.safetensors"
    lines = []
    train_segmentation(SegmentationTraining(
        data=[str(synthetic_transect), str(coralnet_export(tmp_path))], out=str(out), encoder=TINY_ENCODER,
        decoder_channels=(16, 16, 8, 8, 8), input_width=64, crop=(64, 32), iterations=2, eval_every=2, batch_size=4,
        threads=1, teacher=str(teacher)), log=lines.append)
    card = load_weights(out, "segmentation").card
    assert card["training"]["teacher"]["sha256"] == load_weights(teacher, "segmentation").sha256
    assert card["training"]["history"][-1]["distill"] > 0
    assert card["training"]["settings"]["encoder_weights"] == "random"  # no ImageNet file for this encoder
    points = card["metrics"]["validation_points"]
    assert points["points"] == 2 * 12 and len(points["images"]) == 2  # the fixed validation photos
    assert "points_grouped_point_accuracy" in card["training"]["history"][-1]
    assert card["calibration"]["temperature"] > 0 and card["calibration"]["points"] == 24
    fixed = segmentation_card(TINY_ENCODER, default_taxonomy(), (64, 64), (16, 16, 8, 8, 8), {"data": "test"})
    other = save_weights(build_model(fixed), fixed, tmp_path / "fixed.safetensors")
    with pytest.raises(UsageError, match="normalises its input"):
        train_segmentation(SegmentationTraining(data=[str(synthetic_transect)], out=str(out), encoder=TINY_ENCODER,
                                                decoder_channels=(16, 16, 8, 8, 8), input_width=64, crop=(64, 32),
                                                iterations=1, teacher=str(other)), log=lines.append)


@pytest.mark.skipif(not CORALNET.exists(), reason="../shared/realdata/coralnet_mcr_lter is not here")
def test_the_real_photoquadrats_load_with_their_expert_points():
    from reefmap.io.points import point_label_map
    from reefmap.train.data import load_point_annotations

    taxonomy = default_taxonomy()
    data = load_point_annotations(CORALNET, point_label_map(CORALNET, taxonomy), 224)
    assert data.images.shape[0] == 16 and len(data.validation) == 4
    ids, counts = np.unique(data.labels[data.labels > 0], return_counts=True)
    by_name = {taxonomy.by_id(int(i)).name: int(n) for i, n in zip(ids, counts)}
    # 3,200 points less 33 Off; a few points of an image can share one pixel at 224 px
    assert 3100 < sum(by_name.values()) <= 3167
    assert by_name["massive/meandering alive"] > 1300 and by_name["sand"] > 280
