"""`reefmap train depth`: fit the depth and pose networks to synthetic transects with true depth and motion."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch

from reefmap.config import DepthPoseTraining
from reefmap.errors import UsageError
from reefmap.geometry.transforms import invert_pose, matrix_to_pose_vector
from reefmap.models.depth import POSE_SCALE, DepthPoseModel
from reefmap.models.weights import depth_pose_card, load_weights, save_weights
from reefmap.perception.networks import network_size
from reefmap.train.data import load_transect, load_video_clip, normalise, split_frames, underwater_jitter
from reefmap.train.loop import run_loop
from reefmap.train.photometric import axis_angle_to_matrix, smoothness, view_synthesis_loss

POSE_LOSS_WEIGHT = 0.1


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


def _self_supervised_loss(model, clips, rng, batch_size, smoothness_weight, device) -> torch.Tensor:
    """View synthesis of frame i from i-1 and i+1 of real videos, plus edge-aware disparity smoothness."""
    picks = [(c, int(rng.integers(1, len(clips[c].images) - 1))) for c in rng.integers(0, len(clips), batch_size)]
    losses = []
    for c in sorted({c for c, _ in picks}):
        idx = [i for cc, i in picks if cc == c]
        frames = clips[c].images
        prev, curr, nxt = (normalise(frames[[i + o for i in idx]]).to(device) for o in (-1, 0, 1))
        raw = [torch.from_numpy(frames[[i + o for i in idx]]).permute(0, 3, 1, 2).float().div(255).to(device)
               for o in (-1, 0, 1)]
        disparity = model.depth.disparity(curr)
        T_prev_curr = axis_angle_to_matrix(model.pose(torch.cat([prev, curr], 1)))
        T_next_curr = torch.linalg.inv(axis_angle_to_matrix(model.pose(torch.cat([curr, nxt], 1))))
        K = torch.tensor(clips[c].K, dtype=torch.float32, device=device)
        loss = view_synthesis_loss(raw[1], [raw[0], raw[2]], 1.0 / disparity, [T_prev_curr, T_next_curr], K)
        losses.append(loss + smoothness_weight * smoothness(disparity, raw[1]))
    return torch.stack(losses).mean()


def train_depth_pose(settings: DepthPoseTraining, log=print) -> Path:
    """Supervised training on synthetic truth and/or self-supervised on videos; writes fp16 weights and card."""
    if not settings.data and not settings.videos:
        raise UsageError("no training data: pass `reefmap synth` folders and/or video files")
    torch.manual_seed(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    frame_size = (settings.input_width, int(round(settings.input_width * 9 / 16)))
    size = network_size(frame_size, settings.input_width)
    transects = [load_transect(d, frame_size) for d in settings.data]
    train_frames, val_frames = split_frames(transects, settings.val_fraction, settings.seed)
    train_pairs, val_pairs = _pairs(transects, train_frames), _pairs(transects, val_frames)
    clips = [load_video_clip(v, settings.input_width, settings.video_fps) for v in settings.videos]
    log(f"loaded {len(transects)} transects ({len(train_pairs)} training and {len(val_pairs)} validation pairs) "
        f"and {len(clips)} videos ({sum(len(c.images) for c in clips)} frames)")
    start = load_weights(settings.init, "depth_pose", device) if settings.init else None
    if start:
        model = start.model
    else:
        model = DepthPoseModel(settings.depth_encoder, settings.pose_encoder, 0.1, settings.max_depth,
                               settings.decoder_channels).to(device)

    def step(rng):
        losses = {}
        if train_pairs:
            items = [train_pairs[k] for k in rng.integers(0, len(train_pairs), settings.batch_size)]
            prev, curr, depth, motion = (x.to(device) for x in _batch(transects, items, size, rng, augment=True))
            depth_loss, pose_loss = _losses(model, prev, curr, depth, motion)
            losses |= {"depth_loss": depth_loss, "pose_loss": POSE_LOSS_WEIGHT * pose_loss}
        if clips:
            losses["photometric_loss"] = _self_supervised_loss(model, clips, rng, settings.batch_size,
                                                               settings.smoothness_weight, device)
        return losses

    def validate():
        return evaluate_depth_pose(model, transects, val_pairs, size, device) if val_pairs else {}

    loop = run_loop(model, settings, step, validate, log)
    metrics = validate()
    kinds = []
    if transects:
        kinds.append("synthetic transects (reefmap synth) supervised by true depth (metres) and true relative motion")
    if clips:
        kinds.append("videos, self-supervised by view synthesis (SSIM + L1, auto-masking, smoothness)")
    model_card = start.card if start else None
    card = depth_pose_card(
        model_card["depth_encoder"] if model_card else settings.depth_encoder,
        model_card["pose_encoder"] if model_card else settings.pose_encoder,
        size, tuple(model_card["decoder_channels"]) if model_card else settings.decoder_channels,
        training={"data": [Path(d).name for d in settings.data + settings.videos], "kind": "; ".join(kinds),
                  "initialised_from": settings.init, "initialised_from_sha256": start.sha256 if start else None,
                  "iterations": loop.iterations, "settings": asdict(settings),
                  "command": " ".join(sys.argv), "history": loop.history},
        max_depth=model_card["max_depth"] if model_card else settings.max_depth,
        depth_units="metres" if transects else "relative",
        metrics={"validation": "held-out blocks of the synthetic training transects", **metrics},
    )
    path = save_weights(model, card, settings.out)
    log(f"wrote {path} ({json.dumps(metrics)})")
    return path
