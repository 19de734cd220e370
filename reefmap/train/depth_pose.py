"""`reefmap train depth`: fit the depth and pose networks to synthetic transects with true depth and motion."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from reefmap.errors import UsageError
from reefmap.geometry.transforms import invert_pose, matrix_to_pose_vector
from reefmap.models.depth import POSE_SCALE, DepthPoseModel
from reefmap.models.weights import depth_pose_card, save_weights
from reefmap.perception import network_size
from reefmap.train.data import load_transect, normalise, split_frames, underwater_jitter
from reefmap.train.loop import run_loop

POSE_LOSS_WEIGHT = 0.1


@dataclass
class DepthPoseTraining:
    """Settings of one depth/pose training run (saved into the weights card)."""

    data: list[str]
    out: str
    depth_encoder: str = "mobilenetv3_large_100"
    pose_encoder: str = "mobilenetv3_large_100"
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)
    input_width: int = 320
    max_depth: float = 20.0
    iterations: int = 2000
    batch_size: int = 6
    lr: float = 1e-3
    val_fraction: float = 0.1
    eval_every: int = 100
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    time_limit_min: float | None = None
    resume: bool = False


def _pairs(transects, frames) -> list[tuple[int, int, int]]:
    """(transect, i, i + 1) for consecutive frames both in `frames`."""
    members = set(frames)
    return [(t, i, i + 1) for t, i in frames if (t, i + 1) in members]


def _batch(transects, items, size, rng, augment):
    prev, curr, depth, motion = [], [], [], []
    for t, i, j in items:
        tr = transects[t]
        a, b = tr.images[i], tr.images[j]
        if augment:
            state = rng.bit_generator.state
            a = underwater_jitter(a, rng)
            rng.bit_generator.state = state
            b = underwater_jitter(b, rng)
        prev.append(cv2.resize(a, size, interpolation=cv2.INTER_AREA))
        curr.append(cv2.resize(b, size, interpolation=cv2.INTER_AREA))
        depth.append(cv2.resize(tr.depth[j].astype(np.float32), size, interpolation=cv2.INTER_NEAREST))
        motion.append(matrix_to_pose_vector(invert_pose(tr.poses[i]) @ tr.poses[j]))
    return (normalise(np.stack(prev)), normalise(np.stack(curr)), torch.from_numpy(np.stack(depth)),
            torch.tensor(np.stack(motion), dtype=torch.float32))


def _losses(model, prev, curr, depth, motion):
    """Mean |log depth error| on pixels with truth, and L1 pose error in units of POSE_SCALE."""
    valid = depth > 0
    predicted = model.depth(curr)
    depth_loss = (torch.log(predicted[valid]) - torch.log(depth[valid])).abs().mean()
    pose_loss = (model.pose(torch.cat([prev, curr], dim=1)) - motion).abs().mean() / POSE_SCALE
    return depth_loss, pose_loss


def evaluate_depth_pose(model, transects, pairs, size, device) -> dict:
    """Depth AbsRel and delta<1.25, and relative-motion errors, on validation pairs."""
    abs_rel, median_abs_rel, delta, trans_err, rot_err = [], [], [], [], []
    with torch.inference_mode():
        for k in range(0, len(pairs), 8):
            prev, curr, depth, motion = _batch(transects, pairs[k:k + 8], size, None, augment=False)
            predicted = model.depth(curr.to(device)).cpu()
            pose = model.pose(torch.cat([prev, curr], 1).to(device)).cpu()
            for p, d in zip(predicted, depth):
                valid = d > 0
                ratio = p[valid] / d[valid]
                abs_rel.append(float(((p[valid] - d[valid]).abs() / d[valid]).mean()))
                rescaled = p[valid] * (d[valid] / p[valid]).median()
                median_abs_rel.append(float(((rescaled - d[valid]).abs() / d[valid]).mean()))
                delta.append(float((torch.maximum(ratio, 1 / ratio) < 1.25).float().mean()))
            trans_err += (pose[:, 3:] - motion[:, 3:]).norm(dim=1).tolist()
            rot_err += (pose[:, :3] - motion[:, :3]).norm(dim=1).tolist()
    return {"depth_abs_rel": float(np.mean(abs_rel)), "depth_abs_rel_median_scaled": float(np.mean(median_abs_rel)),
            "depth_delta_1.25": float(np.mean(delta)),
            "translation_error_m": float(np.mean(trans_err)), "rotation_error_deg": float(np.degrees(np.mean(rot_err)))}


def train_depth_pose(settings: DepthPoseTraining, log=print) -> Path:
    """Supervised training on synthetic truth; writes fp16 weights with their card to `settings.out`."""
    if not settings.data:
        raise UsageError("no training data: pass one or more `reefmap synth` folders")
    torch.manual_seed(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    frame_size = (settings.input_width, int(round(settings.input_width * 9 / 16)))
    size = network_size(frame_size, settings.input_width)
    transects = [load_transect(d, frame_size) for d in settings.data]
    train_frames, val_frames = split_frames(transects, settings.val_fraction, settings.seed)
    train_pairs, val_pairs = _pairs(transects, train_frames), _pairs(transects, val_frames)
    log(f"loaded {len(transects)} transects: {len(train_pairs)} training and {len(val_pairs)} validation pairs")
    model = DepthPoseModel(settings.depth_encoder, settings.pose_encoder, 0.1, settings.max_depth,
                           settings.decoder_channels).to(device)

    def step(rng):
        items = [train_pairs[k] for k in rng.integers(0, len(train_pairs), settings.batch_size)]
        prev, curr, depth, motion = (x.to(device) for x in _batch(transects, items, size, rng, augment=True))
        depth_loss, pose_loss = _losses(model, prev, curr, depth, motion)
        return {"depth_loss": depth_loss, "pose_loss": POSE_LOSS_WEIGHT * pose_loss}

    loop = run_loop(model, settings, step, lambda: evaluate_depth_pose(model, transects, val_pairs, size, device), log)
    metrics = evaluate_depth_pose(model, transects, val_pairs, size, device)
    card = depth_pose_card(
        settings.depth_encoder, settings.pose_encoder, size, settings.decoder_channels,
        training={"data": [Path(d).name for d in settings.data], "kind": "synthetic transects (reefmap synth), "
                  "supervised by true depth (metres) and true relative motion", "iterations": loop.iterations,
                  "settings": asdict(settings), "command": " ".join(sys.argv), "history": loop.history},
        max_depth=settings.max_depth, depth_units="metres",
        metrics={"validation": "held-out blocks of the synthetic training transects", **metrics},
    )
    path = save_weights(model, card, settings.out)
    log(f"wrote {path} ({json.dumps(metrics)})")
    return path
