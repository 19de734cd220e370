"""`reefmap train segmentation`: fit the U-Net to labelled frames (synthetic transects for now)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from reefmap.errors import UsageError
from reefmap.models.unet import build_unet
from reefmap.models.weights import IMAGENET_NORMALISATION, save_weights, segmentation_card
from reefmap.perception import network_size
from reefmap.taxonomy import default_taxonomy
from reefmap.train.data import load_transect, random_crop, split_frames, underwater_jitter


@dataclass
class SegmentationTraining:
    """Settings of one segmentation training run (saved into the weights card)."""

    data: list[str]
    out: str
    encoder: str = "mobilenetv3_large_100"
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)
    input_width: int = 320
    crop: tuple[int, int] = (256, 160)
    iterations: int = 2000
    batch_size: int = 8
    lr: float = 2e-3
    val_fraction: float = 0.1
    eval_every: int = 100
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    time_limit_min: float | None = None
    resume: bool = False
    extra: dict = field(default_factory=dict)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_NORMALISATION["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_NORMALISATION["std"]).view(1, 3, 1, 1)
    return (x - mean) / std


def class_weights(labels: np.ndarray, lut: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse square-root frequency weights per channel, mean 1 over the classes present."""
    counts = np.bincount(lut[labels.ravel()], minlength=num_classes + 1)[:num_classes].astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = 1.0 / np.sqrt(counts[present] / counts.sum())
    weights[present] /= weights[present].mean()
    return torch.tensor(np.clip(weights, 0, 10.0), dtype=torch.float32)


def evaluate_segmentation(model, transects, frames, lut, num_classes, device, input_width) -> dict:
    """Pixel accuracy and mean IoU (over classes present in the truth) on full validation frames."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    model.eval()
    with torch.inference_mode():
        for t, i in frames:
            image, labels = transects[t].images[i], transects[t].labels[i]
            size = network_size((image.shape[1], image.shape[0]), input_width)
            x = _to_tensor(cv2.resize(image, size, interpolation=cv2.INTER_AREA)[None]).to(device)
            logits = F.interpolate(model(x), size=labels.shape, mode="bilinear", align_corners=False)
            pred = logits.argmax(1)[0].cpu().numpy()
            truth = lut[labels]
            valid = truth < num_classes
            confusion += np.bincount(truth[valid] * num_classes + pred[valid], minlength=num_classes ** 2).reshape(
                num_classes, num_classes)
    model.train()
    tp = np.diag(confusion).astype(np.float64)
    present = confusion.sum(1) > 0
    iou = tp / np.maximum(confusion.sum(0) + confusion.sum(1) - tp, 1)
    return {"pixel_accuracy": float(tp.sum() / max(confusion.sum(), 1)),
            "miou": float(iou[present].mean()) if present.any() else 0.0,
            "iou": {int(k): float(iou[k]) for k in np.nonzero(present)[0]}}


def train_segmentation(settings: SegmentationTraining, log=print) -> Path:
    """Train, checkpoint every evaluation, and write fp16 weights with their card to `settings.out`."""
    if not settings.data:
        raise UsageError("no training data: pass one or more `reefmap synth` folders")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    taxonomy = default_taxonomy()
    num_classes = len(taxonomy)
    lut = np.full(256, num_classes, np.int64)
    lut[taxonomy.ids] = np.arange(num_classes)
    frame_size = (settings.input_width, int(round(settings.input_width * 9 / 16)))
    transects = [load_transect(d, frame_size) for d in settings.data]
    train_frames, val_frames = split_frames(transects, settings.val_fraction, settings.seed)
    log(f"loaded {len(transects)} transects: {len(train_frames)} training and {len(val_frames)} validation frames")
    weights = class_weights(np.concatenate([transects[t].labels[i].ravel() for t, i in train_frames[::5]]), lut,
                            num_classes).to(device)
    model = build_unet(settings.encoder, num_classes, settings.decoder_channels).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    checkpoint = Path(settings.out).with_suffix(".ckpt")
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    start_iteration, history = 0, []
    if settings.resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start_iteration, history = state["iteration"], state["history"]
        rng = np.random.default_rng(settings.seed + start_iteration)
        log(f"resumed from {checkpoint} at iteration {start_iteration}")
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, settings.lr, total_steps=settings.iterations,
                                                   pct_start=0.05, last_epoch=start_iteration - 1)
    started = time.time()
    model.train()
    iteration = start_iteration
    for iteration in range(start_iteration, settings.iterations):
        batch = [train_frames[k] for k in rng.integers(0, len(train_frames), settings.batch_size)]
        crops = [random_crop(underwater_jitter(transects[t].images[i], rng), transects[t].labels[i], settings.crop, rng)
                 for t, i in batch]
        x = _to_tensor(np.stack([c[0] for c in crops])).to(device)
        y = torch.from_numpy(lut[np.stack([c[1] for c in crops])]).to(device)
        loss = F.cross_entropy(model(x), y, weight=weights, ignore_index=num_classes)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        done = iteration + 1
        out_of_time = settings.time_limit_min and time.time() - started > 60 * settings.time_limit_min
        if done % settings.eval_every == 0 or done == settings.iterations or out_of_time:
            metrics = evaluate_segmentation(model, transects, val_frames, lut, num_classes, device, settings.input_width)
            history.append({"iteration": done, "loss": loss.item(), "minutes": round((time.time() - started) / 60, 2),
                            **{k: metrics[k] for k in ("pixel_accuracy", "miou")}})
            log(json.dumps(history[-1]))
            torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), 
                        "iteration": done, "history": history}, checkpoint)
            if out_of_time:
                log(f"time limit of {settings.time_limit_min} min reached at iteration {done}")
                break
    metrics = evaluate_segmentation(model, transects, val_frames, lut, num_classes, device, settings.input_width)
    card = segmentation_card(
        settings.encoder, taxonomy, network_size(frame_size, settings.input_width), settings.decoder_channels,
        training={"data": [Path(d).name for d in settings.data], "kind": "synthetic transects (reefmap synth)",
                  "iterations": iteration + 1, "settings": asdict(settings) | {"data": [str(d) for d in settings.data]},
                  "command": " ".join(sys.argv), "history": history},
        metrics={"validation": "held-out blocks of the synthetic training transects",
                 "pixel_accuracy": metrics["pixel_accuracy"], "miou": metrics["miou"],
                 "iou_by_class": {taxonomy.classes[k].name: v for k, v in metrics["iou"].items()}},
    )
    path = save_weights(model, card, settings.out)
    log(f"wrote {path} (pixel accuracy {metrics['pixel_accuracy']:.3f}, mIoU {metrics['miou']:.3f})")
    return path
