import numpy as np
import pytest
import torch

from reefmap.errors import UsageError
from reefmap.io.video import Frame
from reefmap.models.weights import (
    IMAGENET_NORMALISATION, PER_IMAGE_NORMALISATION, load_weights, normalise_batch, save_weights,
)
from reefmap.perception.networks import DepthPoseEstimator, Perception, Segmenter, network_size, resolve_device, smooth_over_time


def _item(i, value):
    probs = np.zeros((2, 1, 1), np.float32)
    probs[0] = value
    probs[1] = 1 - value
    return Perception(Frame(i, i / 10, np.zeros((1, 1, 3), np.uint8)), probs, np.ones((1, 1), np.float32), None)


def test_smoothing_weights_one_two_one_with_edges():
    values = [1.0, 0.0, 0.0, 1.0]
    out = list(smooth_over_time(_item(i, v) for i, v in enumerate(values)))
    assert [o.frame.index for o in out] == [0, 1, 2, 3]
    got = [float(o.probabilities[0, 0, 0]) for o in out]
    np.testing.assert_allclose(got, [2 / 3, 1 / 4, 1 / 4, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose([float(o.probabilities.sum()) for o in out], 1.0, rtol=1e-6)


def test_smoothing_single_frame_and_disabled():
    assert float(list(smooth_over_time([_item(0, 0.3)]))[0].probabilities[0, 0, 0]) == pytest.approx(0.3)
    raw = [_item(i, float(i % 2)) for i in range(3)]
    assert [o.probabilities[0, 0, 0] for o in smooth_over_time(raw, enabled=False)] == [0.0, 1.0, 0.0]


def test_relative_poses_pair_frames_across_batches(tiny_weights):
    estimator = DepthPoseEstimator(load_weights(tiny_weights["depth_pose"], "depth_pose"), torch.device("cpu"))
    frames = [np.random.default_rng(i).integers(0, 255, (96, 160, 3), dtype=np.uint8) for i in range(5)]
    first = estimator.relative_poses(estimator.prepare(frames[:3]))
    second = estimator.relative_poses(estimator.prepare(frames[3:]))
    assert first[0] is None and all(p.shape == (4, 4) for p in first[1:] + second)
    assert len(first) == 3 and len(second) == 2
    # the pair (2, 3) spans the batch boundary and must equal a direct evaluation
    fresh = DepthPoseEstimator(estimator.weights, torch.device("cpu"))
    direct = fresh.relative_poses(fresh.prepare(frames[2:4]))[1]
    np.testing.assert_allclose(second[0], direct, atol=1e-5)


def test_network_size_multiple_of_32():
    assert network_size((640, 360), 512) == (512, 288)
    assert network_size((1920, 1080), 320) == (320, 192)


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(UsageError, match="unknown --device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="not available"):
            resolve_device("cuda")


def test_per_image_normalisation_cancels_the_water_tint():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(0.2, 0.6, (2, 3, 8, 12)).astype(np.float32))
    gain, offset = torch.tensor([0.6, 1.0, 1.4]).view(1, 3, 1, 1), torch.tensor([0.05, 0.2, 0.3]).view(1, 3, 1, 1)
    per_image = normalise_batch(x, PER_IMAGE_NORMALISATION)
    torch.testing.assert_close(normalise_batch(x * gain + offset, PER_IMAGE_NORMALISATION), per_image)
    torch.testing.assert_close(per_image.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-6, rtol=0)
    flat = normalise_batch(torch.full((1, 3, 4, 4), 0.5), PER_IMAGE_NORMALISATION)  # nothing to stretch
    assert torch.count_nonzero(flat) == 0
    fixed = normalise_batch(x, IMAGENET_NORMALISATION)
    torch.testing.assert_close(fixed[:, 0], (x[:, 0] - 0.485) / 0.229)


def test_segmenter_normalises_as_its_card_says(tiny_weights, tmp_path):
    seg = load_weights(tiny_weights["segmentation"], "segmentation")
    card = {**seg.card, "normalisation": PER_IMAGE_NORMALISATION}
    per_image = Segmenter(load_weights(save_weights(seg.model, card, tmp_path / "pi.safetensors"), "segmentation"),
                          torch.device("cpu"))
    fixed = Segmenter(seg, torch.device("cpu"))
    rng = np.random.default_rng(1)
    frame = rng.integers(60, 160, (96, 160, 3)).astype(np.uint8)
    tinted = np.clip(frame * np.array([0.7, 1.0, 1.3]) + [0, 20, 30], 0, 255).round().astype(np.uint8)
    change = {name: np.abs(net.probabilities([tinted]) - net.probabilities([frame])).max()
              for name, net in (("per image", per_image), ("fixed", fixed))}
    assert change["per image"] < 0.1 * change["fixed"], change  # the tint moves only the fixed network's output
