import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import TINY_ENCODER
from reefmap.errors import UsageError
from reefmap.models.depth import DepthPoseModel
from reefmap.models.unet import build_unet
from reefmap.models.weights import IMAGENET_NORMALISATION, PER_IMAGE_NORMALISATION, load_weights
from reefmap.train.data import capture_artefacts, load_transect, random_crop, split_frames, underwater_jitter
from reefmap.train.depth_pose import DepthPoseTraining, evaluate_depth_pose, train_depth_pose
from reefmap.train.segmentation import (
    SegmentationTraining, adjust_logits, class_weight_frames, class_weights, colour_affinity_loss, train_segmentation,
    training_normalisation,
)


def test_class_weights_favour_rare_classes():
    lut = np.full(256, 3, np.int64)
    lut[[5, 18, 22]] = [0, 1, 2]
    labels = np.array([5] * 81 + [18] * 9 + [22] * 1 + [99] * 5)  # 99 is not a class: ignored
    w = class_weights(labels, lut, 3).numpy()
    assert w[2] > w[1] > w[0]
    assert w[1] / w[0] == pytest.approx(3.0) and w.mean() == pytest.approx(1.0)


def test_class_weights_count_every_point_labelled_frame():
    frames = [(0, i) for i in range(12)] + [(1, i) for i in range(12)]
    chosen = class_weight_frames(frames, point_sources={1})
    assert [i for t, i in chosen if t == 1] == list(range(12))  # a rare class's few points all count
    assert [i for t, i in chosen if t == 0] == [0, 5, 10]  # dense labels: every fifth frame is plenty


def test_random_crop_keeps_image_and_labels_aligned():
    rng = np.random.default_rng(0)
    labels = np.zeros((90, 160), np.uint8)
    labels[:, 80:] = 7
    image = np.repeat((labels * 30)[..., None], 3, axis=2)
    flipped = []
    for _ in range(20):
        im, lab = random_crop(image, labels, (64, 32), rng)
        assert im.shape == (32, 64, 3) and lab.shape == (32, 64)
        assert ((im[..., 0] > 100) == (lab == 7)).mean() > 0.96  # all but the blended boundary column
        flipped.append(lab[0, 0] == 7)
    assert any(flipped) and not all(flipped)


def test_underwater_jitter_changes_colour_not_shape():
    image = np.full((8, 8, 3), 128, np.uint8)
    out = underwater_jitter(image, np.random.default_rng(1))
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)


def test_capture_artefacts_blur_and_compress_some_images_and_keep_the_rest():
    rng = np.random.default_rng(0)
    image = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    outputs = [capture_artefacts(image, rng) for _ in range(40)]
    assert all(o.shape == image.shape and o.dtype == np.uint8 for o in outputs)
    changed = [not np.array_equal(o, image) for o in outputs]
    assert 0.4 < np.mean(changed) < 0.85  # 1 - 0.7 * 0.5 of them on average
    # compression and blur both smooth random noise: neighbouring pixels come closer
    roughness = [np.abs(np.diff(o.astype(int), axis=1)).mean() for o, c in zip(outputs, changed) if c]
    assert max(roughness) < np.abs(np.diff(image.astype(int), axis=1)).mean()


def test_segmentation_training_writes_loadable_weights(synthetic_transect, tmp_path):
    out = tmp_path / "seg.safetensors"
    lines = []
    train_segmentation(SegmentationTraining(data=[str(synthetic_transect)], out=str(out), encoder=TINY_ENCODER,
                                            decoder_channels=(16, 16, 8, 8, 8), input_width=128, crop=(96, 64),
                                            iterations=3, eval_every=2, batch_size=2, threads=1), log=lines.append)
    loaded = load_weights(out, "segmentation")
    assert loaded.card["training"]["iterations"] == 3 and len(loaded.card["training"]["history"]) == 2
    assert 0.0 <= loaded.card["metrics"]["pixel_accuracy"] <= 1.0
    assert loaded.card["normalisation"] == PER_IMAGE_NORMALISATION  # the default for a network trained from scratch
    assert loaded.card["training"]["settings"]["affinity_weight"] == 0  # dense labels need no affinity loss
    assert out.with_suffix(".ckpt").exists() and "wrote" in lines[-1]
    # the final metrics did not move the batch-norm statistics: the weights are the last checkpoint's
    checkpoint = torch.load(out.with_suffix(".ckpt"), weights_only=True)["model"]
    saved = loaded.model.state_dict()
    for name in (k for k in checkpoint if k.endswith("running_mean") or k.endswith("running_var")):
        torch.testing.assert_close(saved[name], checkpoint[name].half().float(), msg=name)
    # resuming from the checkpoint continues the count instead of starting again
    train_segmentation(SegmentationTraining(data=[str(synthetic_transect)], out=str(out), encoder=TINY_ENCODER,
                                            decoder_channels=(16, 16, 8, 8, 8), input_width=128, crop=(96, 64),
                                            iterations=4, eval_every=2, batch_size=2, threads=1, resume=True),
                       log=lines.append)
    assert any("resumed" in line and "iteration 3" in line for line in lines)
    assert json.loads(out.with_suffix(".json").read_text())["training"]["iterations"] == 4
    out.with_suffix(".ckpt").write_bytes(b"torn")  # a corrupt checkpoint is reported, not silently replaced
    with pytest.raises(UsageError, match="cannot be resumed.*delete it"):
        train_segmentation(SegmentationTraining(data=[str(synthetic_transect)], out=str(out), encoder=TINY_ENCODER,
                                                decoder_channels=(16, 16, 8, 8, 8), input_width=128, crop=(96, 64),
                                                iterations=5, batch_size=2, threads=1, resume=True), log=lines.append)


def test_segmentation_fine_tuning_starts_from_the_given_weights(synthetic_transect, tiny_weights, tmp_path):
    out = tmp_path / "tuned.safetensors"
    train_segmentation(SegmentationTraining(data=[str(synthetic_transect)], out=str(out), init=str(tiny_weights["segmentation"]),
                                            input_width=128, crop=(96, 64), iterations=2, eval_every=2, batch_size=2,
                                            lr=1e-9, threads=1), log=lambda m: None)
    start, tuned = load_weights(tiny_weights["segmentation"], "segmentation"), load_weights(out, "segmentation")
    assert tuned.card["encoder"] == TINY_ENCODER and tuned.card["decoder_channels"] == [32, 16, 16, 8, 8]
    assert tuned.card["training"]["initialised_from"] == str(tiny_weights["segmentation"])
    assert tuned.card["training"]["initialised_from_sha256"] == load_weights(tiny_weights["segmentation"], "segmentation").sha256
    for (name, a), b in zip(start.model.named_parameters(), tuned.model.parameters()):
        if name != "segmentation_head.0.bias":  # moved by the logit adjustment, not by training
            torch.testing.assert_close(a, b, atol=2e-3, rtol=0, msg=name)
    assert tuned.card["training"]["logit_adjustment"]["alpha"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert tuned.card["normalisation"] == start.card["normalisation"] == IMAGENET_NORMALISATION  # kept from the start


def test_train_segmentation_command_validates_as_often_as_told(monkeypatch, capsys, synthetic_transect, tiny_weights,
                                                              tmp_path):
    from test_process import run_cli

    out = tmp_path / "cli.safetensors"
    code, _, err = run_cli(monkeypatch, capsys, "train", "segmentation", synthetic_transect, "--out", out,
                           "--init", tiny_weights["segmentation"], "--input-width", 128, "--iterations", 5,
                           "--eval-every", 2, "--batch-size", 2, "--threads", 1)
    assert code == 0, err
    training = load_weights(out, "segmentation").card["training"]
    assert [h["iteration"] for h in training["history"]] == [2, 4, 5]
    assert training["settings"]["eval_every"] == 2
    code, _, err = run_cli(monkeypatch, capsys, "train", "segmentation", synthetic_transect, "--out", out,
                           "--eval-every", 0)
    assert code == 2 and "--eval-every" in err


def test_colour_affinity_loss_asks_alike_neighbours_to_agree():
    split = torch.zeros(1, 2, 8, 8)
    split[:, 0, :, :4], split[:, 1, :, 4:] = 1.0, 1.0  # class 0 on the left half, class 1 on the right
    uniform = torch.zeros(1, 3, 8, 8)
    edged = uniform.clone()
    edged[:, :, :, 4:] = 3.0  # a strong colour edge where the classes change
    one_class = torch.zeros(1, 2, 8, 8)
    one_class[:, 0] = 1.0
    assert colour_affinity_loss(one_class, uniform) == 0  # one class over one colour: nothing to pay
    assert colour_affinity_loss(split, edged) < 1e-6  # the classes change where the colour does
    assert colour_affinity_loss(split, uniform) > 0.05  # a class boundary through a uniform patch costs
    soft = torch.full((1, 2, 8, 8), 0.5)
    assert colour_affinity_loss(soft, uniform) == pytest.approx(0.5)  # undecided pixels disagree by half


def test_training_normalisation_follows_the_start_weights_unless_told():
    imagenet, reference = {"normalisation": IMAGENET_NORMALISATION}, {"normalisation": {"mean": [0.45] * 3, "std": [0.225] * 3}}
    assert training_normalisation(None, None) == PER_IMAGE_NORMALISATION
    assert training_normalisation("fixed", None) == IMAGENET_NORMALISATION
    assert training_normalisation(None, imagenet) == IMAGENET_NORMALISATION
    assert training_normalisation("fixed", reference) == reference["normalisation"]
    assert training_normalisation("per-image", reference) == PER_IMAGE_NORMALISATION
    assert training_normalisation(None, {"normalisation": PER_IMAGE_NORMALISATION}) == PER_IMAGE_NORMALISATION
    with pytest.raises(UsageError, match="colour normalisation"):
        training_normalisation("grey-world", None)


def test_logit_adjustment_removes_the_class_weight_bias_validation_prefers():
    model = build_unet(TINY_ENCODER, 3, (16, 16, 8, 8, 8)).eval()
    head = model.segmentation_head[0]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 0.9, -10.0]))  # class 1 wins by 0.9, as if its loss weight were e^0.9
    frames = SimpleNamespace(images=np.zeros((2, 36, 64, 3), np.uint8), labels=np.zeros((2, 36, 64), np.uint8))
    lut = np.full(256, 3, np.int64)
    lut[:3] = [0, 1, 2]
    weights = torch.tensor([1.0, np.e, 0.0])  # class 2 never seen in training: left alone
    adjustment = adjust_logits(model, [frames], [(0, 0), (0, 1)], lut, weights, torch.device("cpu"), 64,
                               IMAGENET_NORMALISATION)
    assert adjustment["alpha"] == 1.0  # only removing all of class 1's log-weight advantage predicts the truth
    assert adjustment["validation_miou_by_alpha"] == {0.0: 0.0, 0.25: 0.0, 0.5: 0.0, 0.75: 0.0, 1.0: 1.0}
    torch.testing.assert_close(head.bias, torch.tensor([0.0, -0.1, -10.0]))


def test_depth_pose_training_learns_the_true_depth_scale(synthetic_transect, tmp_path):
    out = tmp_path / "dp.safetensors"
    train_depth_pose(DepthPoseTraining(data=[str(synthetic_transect)], out=str(out), depth_encoder=TINY_ENCODER,
                                       pose_encoder=TINY_ENCODER, decoder_channels=(16, 16, 8, 8, 8), input_width=128,
                                       iterations=40, eval_every=40, batch_size=4, lr=3e-3, threads=1),
                     log=lambda m: None)
    card = load_weights(out, "depth_pose").card
    untrained = DepthPoseModel(TINY_ENCODER, TINY_ENCODER, 0.1, 20.0, (16, 16, 8, 8, 8))
    transects = [load_transect(synthetic_transect, (128, 72))]
    _, val = split_frames(transects, 0.1, 0)
    pairs = [(t, i, i + 1) for t, i in val if (t, i + 1) in set(val)]
    baseline = evaluate_depth_pose(untrained, transects, pairs, (128, 64), torch.device("cpu"))
    assert card["metrics"]["depth_abs_rel"] < 0.8 * baseline["depth_abs_rel"]


def test_training_without_data_is_refused():
    with pytest.raises(UsageError, match="no training data"):
        train_segmentation(SegmentationTraining(data=[], out="x.safetensors"))


def test_self_supervised_fine_tuning_on_a_real_clip(real_clip, tiny_weights, tmp_path):
    out = tmp_path / "dp_real.safetensors"
    train_depth_pose(DepthPoseTraining(data=[], videos=[str(real_clip)], out=str(out), init=str(tiny_weights["depth_pose"]),
                                       input_width=128, video_fps=4.0, iterations=2, eval_every=2, batch_size=2,
                                       threads=1), log=lambda m: None)
    card = load_weights(out, "depth_pose").card
    assert "self-supervised" in card["training"]["kind"] and card["depth_units"] == "relative"
    assert card["training"]["initialised_from"] == str(tiny_weights["depth_pose"])
    assert card["training"]["initialised_from_sha256"] == load_weights(tiny_weights["depth_pose"], "depth_pose").sha256
    assert card["training"]["history"][-1]["photometric_loss"] > 0


def _coralnet_folder(tmp_path):
    """Two 64x48 images, left half sand, right half rubble, with CoralNet point annotations."""
    import cv2

    folder = tmp_path / "coralnet"
    folder.mkdir()
    rows = ["Name,Row,Column,Label"]
    for k in range(2):
        image = np.zeros((48, 64, 3), np.uint8)
        image[:, :32] = (150, 190, 200)
        image[:, 32:] = (120, 150, 160)
        cv2.imwrite(str(folder / f"img{k}.jpg"), image)
        rows += [f"img{k}.jpg,{r},{c},{'Sand' if c < 32 else 'Rubb'}" for r in (5, 20, 40) for c in (3, 20, 40, 60)]
        rows.append(f"img{k}.jpg,10,10,Unknown")  # not in the label map: skipped
    (folder / "annotations.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "labels.json").write_text('{"Sand": "sand", "Rubb": 18}')
    return folder, tmp_path / "labels.json"


def test_coralnet_points_load_as_sparse_label_maps(tmp_path):
    from reefmap.taxonomy import default_taxonomy
    from reefmap.io.points import read_label_map
    from reefmap.train.data import load_point_annotations

    folder, label_map = _coralnet_folder(tmp_path)
    data = load_point_annotations(folder, read_label_map(label_map, default_taxonomy()), 32)
    assert data.images.shape == (2, 24, 32, 3)
    assert (data.labels > 0).sum() == 2 * 12
    assert set(np.unique(data.labels[0][:, :16]).tolist()) == {0, 5} and 18 in data.labels[0][:, 16:]
    with pytest.raises(UsageError, match="not a class"):
        (tmp_path / "bad.json").write_text('{"X": "unicorn"}')
        read_label_map(tmp_path / "bad.json", default_taxonomy())


def test_training_on_points_only(tmp_path):
    folder, label_map = _coralnet_folder(tmp_path)
    out = tmp_path / "seg.safetensors"
    train_segmentation(SegmentationTraining(data=[str(folder)], out=str(out), label_map=str(label_map),
                                            encoder=TINY_ENCODER, decoder_channels=(16, 16, 8, 8, 8), input_width=64,
                                            crop=(64, 32), iterations=2, eval_every=2, batch_size=2, threads=1,
                                            val_fraction=0.5), log=lambda m: None)
    card = load_weights(out, "segmentation").card
    assert "point-annotated" in card["training"]["kind"] and "spread" in card["training"]["kind"]
    assert card["training"]["settings"]["affinity_weight"] == 1.0  # point labels get the affinity loss by default
    assert card["training"]["history"][-1]["affinity"] > 0  # the untrained network's soft labels cost something
    with pytest.raises(UsageError, match="--label-map"):
        train_segmentation(SegmentationTraining(data=[str(folder)], out=str(out)), log=lambda m: None)


def test_keep_random_points():
    from reefmap.train.data import keep_random_points

    labels = np.full((10, 10), 5, np.uint8)
    labels[0] = 0
    sparse = keep_random_points(labels, 7, np.random.default_rng(0))
    assert (sparse > 0).sum() == 7 and set(np.unique(sparse).tolist()) == {0, 5} and (sparse[0] == 0).all()


def test_simulated_points_train_and_validate_like_an_annotated_set(synthetic_transect, tmp_path, monkeypatch):
    import reefmap.train.segmentation as segmentation

    scored = []
    evaluate = segmentation.evaluate_segmentation

    def recording_evaluate(model, transects, frames, *args):
        scored.append([(transects[t].labels[i] > 0).sum() for t, i in frames])
        return evaluate(model, transects, frames, *args)

    monkeypatch.setattr(segmentation, "evaluate_segmentation", recording_evaluate)
    out = tmp_path / "points.safetensors"
    train_segmentation(SegmentationTraining(data=[str(synthetic_transect)], out=str(out), encoder=TINY_ENCODER,
                                            decoder_channels=(16, 16, 8, 8, 8), input_width=128, crop=(96, 64),
                                            iterations=2, batch_size=2, threads=1, points_per_image=30),
                       log=lambda m: None)
    card = load_weights(out, "segmentation").card
    assert "30 random labelled points per image" in card["training"]["kind"]
    assert card["training"]["settings"]["affinity_weight"] == 1.0
    assert scored and all(n == 30 for frames in scored for n in frames)  # validation scores the points, no more


def test_simulated_point_annotation_is_drawn_once_per_image():
    from reefmap.train.data import simulated_point_annotation

    labels = np.random.default_rng(1).integers(1, 4, (3, 12, 16)).astype(np.uint8)
    points = simulated_point_annotation(labels, 5, seed=0, source=2)
    assert ((points > 0).sum((1, 2)) == 5).all() and (points[points > 0] == labels[points > 0]).all()
    np.testing.assert_array_equal(points, simulated_point_annotation(labels, 5, seed=0, source=2))  # fixed, not per step
    assert not np.array_equal(points, simulated_point_annotation(labels, 5, seed=0, source=3))
    assert not np.array_equal(points[0] > 0, points[1] > 0)  # each image its own points


def test_point_labels_spread_to_nearby_pixels_of_their_colour():
    from reefmap.train.data import spread_point_labels

    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = (200, 190, 150)  # sand on the left
    image[:, 20:] = (90, 80, 70)  # rock on the right
    labels = np.zeros((20, 40), np.uint8)
    labels[10, 15], labels[10, 25] = 5, 12
    spread = spread_point_labels(image, labels, radius=8.0, colour_tolerance=10.0)
    # each point labels its own side within 8 pixels, never across the colour edge, nothing farther away
    assert (spread[:, :20][spread[:, :20] > 0] == 5).all() and (spread[:, 20:][spread[:, 20:] > 0] == 12).all()
    assert spread[10, 8] == 5 and spread[10, 32] == 12 and spread[10, 19] == 5 and spread[10, 20] == 12
    assert spread[10, 6] == 0 and spread[1, 15] == 0
    y, x = np.mgrid[:20, :40]
    discs = ((np.hypot(y - 10, x - 15) < 8) & (x < 20)) | ((np.hypot(y - 10, x - 25) < 8) & (x >= 20))
    np.testing.assert_array_equal(spread > 0, discs)  # within the radius, on the point's side of the edge
    assert spread_point_labels(image, np.zeros_like(labels), 8.0, 10.0).max() == 0


def _cityscapes_folder(root, values=(5, 17)):
    """A Coralscapes-like dataset: leftImg8bit/<split>/<site>/*_leftImg8bit.png with gtFine/..._gtFine.png."""
    import cv2

    for split, site, count in (("train", "site_a", 3), ("val", "site_b", 2)):
        for k in range(count):
            image_dir, label_dir = root / "leftImg8bit" / split / site, root / "gtFine" / split / site
            image_dir.mkdir(parents=True, exist_ok=True)
            label_dir.mkdir(parents=True, exist_ok=True)
            mask = np.full((90, 160), values[0], np.uint8)
            mask[:, 100:] = values[1]
            mask[:10] = 0  # unlabelled
            image = np.where(mask[..., None] == values[1], 200, 60).astype(np.uint8).repeat(3, axis=2)
            cv2.imwrite(str(image_dir / f"{site}_{k:03d}_leftImg8bit.png"), image)
            cv2.imwrite(str(label_dir / f"{site}_{k:03d}_gtFine.png"), mask)
    (root / "leftImg8bit" / "train" / "site_a" / "orphan_leftImg8bit.png").write_bytes(b"")  # no mask: skipped
    return root


def test_coralscapes_layout_loads_as_it_is_and_trains(tmp_path):
    from reefmap.taxonomy import default_taxonomy
    from reefmap.train.data import is_mask_folder, load_mask_folder, mask_pairs

    root = _cityscapes_folder(tmp_path / "coralscapes")
    assert is_mask_folder(root)
    assert len(mask_pairs(root)) == 5 and len(mask_pairs(root, "val")) == 2
    data = load_mask_folder(root, (80, 45), default_taxonomy())
    assert data.images.shape == (5, 45, 80, 3)
    assert set(np.unique(data.labels)) == {0, 5, 17}
    assert (data.labels[:, 10:, :40] == 5).all() and (data.labels[:, 10:, 60:] == 17).all()
    remapped = load_mask_folder(root, (80, 45), default_taxonomy(), {"5": 18})  # sand masks as rubble; 17 dropped
    assert set(np.unique(remapped.labels)) == {0, 18}
    out = tmp_path / "seg.safetensors"
    train_segmentation(SegmentationTraining(data=[str(root)], out=str(out), encoder=TINY_ENCODER,
                                            decoder_channels=(16, 16, 8, 8, 8), input_width=128, crop=(96, 64),
                                            iterations=2, eval_every=2, batch_size=2, threads=1), log=lambda _: None)
    card = load_weights(out, "segmentation").card
    assert "label masks" in card["training"]["kind"]
