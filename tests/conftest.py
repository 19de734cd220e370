"""Shared fixtures: tiny networks with random weights, small synthetic videos, the real clip."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REAL_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "deepreefmap_video" / "reef_clip.mp4"
TINY_ENCODER = "mobilenetv3_small_050"


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> dict[str, Path]:
    """Segmentation and depth/pose weights of tiny random networks (for plumbing, not accuracy)."""
    import torch

    from reefmap.models.weights import build_model, depth_pose_card, save_weights, segmentation_card
    from reefmap.taxonomy import default_taxonomy

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    training = {"data": "none: random initialisation, test fixture"}
    seg_card = segmentation_card(TINY_ENCODER, default_taxonomy(), (256, 160), (32, 16, 16, 8, 8), training)
    dp_card = depth_pose_card(TINY_ENCODER, TINY_ENCODER, (256, 160), (32, 16, 16, 8, 8), training, max_depth=5.0)
    return {
        "segmentation": save_weights(build_model(seg_card), seg_card, folder / "segmentation.safetensors"),
        "depth_pose": save_weights(build_model(dp_card), dp_card, folder / "depth_pose.safetensors"),
    }


@pytest.fixture
def real_clip() -> Path:
    if not REAL_CLIP.exists():
        pytest.skip(f"real clip not found at {REAL_CLIP} (../shared/realdata is absent)")
    return REAL_CLIP


def write_video(path: Path, n_frames: int, fps: float = 30.0, size: tuple[int, int] = (160, 96)) -> Path:
    """An MJPG AVI whose frame i is a checkerboard (texture for the networks) of mean grey level 30 + 3 * i
    (frame numbers readable after decoding)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    rows, cols = np.indices((size[1], size[0]))
    texture = np.where((rows // 8 + cols // 8) % 2 == 0, 20, -20)[..., None]
    for i in range(n_frames):
        writer.write(np.clip(30 + 3 * i + texture, 0, 255).astype(np.uint8).repeat(3, axis=2))
    writer.release()
    return path


def frame_number(image: np.ndarray) -> int:
    return int(round((float(image.mean()) - 30.0) / 3.0))


@pytest.fixture(scope="session")
def synthetic_transect(tmp_path_factory) -> Path:
    """A short rendered transect with its ground truth (`reefmap synth`)."""
    from reefmap.synthetic.dataset import SynthSettings, synthesize

    out = tmp_path_factory.mktemp("synth") / "transect"
    synthesize(out, SynthSettings(seed=11, length_m=3.0, fps=5.0, size=(480, 270)), quiet=True)
    return out


@pytest.fixture(scope="session")
def oracle_run(synthetic_transect, tmp_path_factory) -> Path:
    """`reefmap process --oracle --save-depth` on the synthetic transect: a finished run folder to read (not modify)."""
    import reefmap

    run = tmp_path_factory.mktemp("oracle") / "run"
    reefmap.process(synthetic_transect / "video.mp4", run, fps=5, oracle=str(synthetic_transect), quiet=True,
                    save_depth=True)
    return run
