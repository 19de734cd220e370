"""`reefmap train segmentation`: fit the U-Net to dense (synthetic) or point-annotated (CoralNet) images."""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from reefmap.config import COLOUR_NORMALISATIONS, ENCODER_WEIGHTS, SegmentationTraining
from reefmap.errors import UsageError
from reefmap.models.pretrained import has_imagenet_weights, load_imagenet_encoder
from reefmap.models.unet import build_unet
from reefmap.models.weights import (
    IMAGENET_NORMALISATION, PER_IMAGE_NORMALISATION, load_weights, save_weights, segmentation_card,
)
from reefmap.perception.networks import network_size
from reefmap.taxonomy import Taxonomy, default_taxonomy
from reefmap.io.points import is_point_folder, point_label_map, read_label_map
from reefmap.train.data import (
    capture_artefacts, is_mask_folder, load_mask_folder, load_point_annotations, load_transect, normalise, random_crop,
    simulated_point_annotation, split_frames, spread_point_labels, underwater_jitter,
)
from reefmap.train.loop import run_loop
from reefmap.train.point_scores import point_scores

SPREAD_RADIUS = 0.1  # of the image width: how far a point's label spreads to pixels of its colour
SPREAD_COLOUR = 12.0  # CIELAB (8-bit OpenCV scale) colour difference that counts as one radius
LOGIT_ADJUSTMENTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # shares of the class-weight bias tried for removal after training
AFFINITY_SHIFTS = tuple((dy * d, dx * d) for d in (1, 2, 4) for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)))
AFFINITY_SIGMA = 0.5  # Gaussian width of the colour affinity, in network input units (per-channel standard deviations)
POINT_AFFINITY_WEIGHT = 1.0  # the affinity loss's weight when the labels are points (dense labels need none)
TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.5), np.log(8.0), 57)))  # tried by calibration
CALIBRATION_BINS = 10


def training_normalisation(choice: str | None, start_card: dict | None) -> dict:
    """The input normalisation to train with: `choice` ("per-image" or "fixed"), by default that of the start weights.

    "fixed" keeps the start weights' own fixed mean/std (ImageNet's when training from scratch).
    """
    if choice not in (None, *COLOUR_NORMALISATIONS):
        raise UsageError(f"unknown colour normalisation '{choice}': use one of {', '.join(COLOUR_NORMALISATIONS)}")
    start = start_card["normalisation"] if start_card else None
    if choice == "per-image" or (choice is None and (start is None or start.get("per_image"))):
        return PER_IMAGE_NORMALISATION
    return start if start and not start.get("per_image") else IMAGENET_NORMALISATION


def same_classes(a: Taxonomy, b: Taxonomy) -> bool:
    """Whether two networks' outputs are the same classes in the same order (ids and names)."""
    return [(c.id, c.name) for c in a.classes] == [(c.id, c.name) for c in b.classes]


def colour_affinity_loss(probabilities: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Mean disagreement of the class distributions of nearby pixels, weighted by how alike their colours are.

    For (B, C, H, W) softmax `probabilities` and (B, 3, H, W) network-input `images`: over pixel pairs 1, 2 and 4
    pixels apart in four directions, exp(-|colour difference|^2 / 2 sigma^2) x (1 - p_i . p_j). Point labels say
    nothing about the pixels between the points; this says neighbours that look alike are of one class (a local
    CRF energy used as a loss, as in weakly supervised segmentation), so the labels reach the unlabelled pixels.
    """
    total = probabilities.new_zeros(())
    for dy, dx in AFFINITY_SHIFTS:
        h, w = probabilities.shape[2] - dy, probabilities.shape[3] - abs(dx)
        x0, x1 = max(0, -dx), max(0, dx)
        p, q = probabilities[:, :, :h, x0:x0 + w], probabilities[:, :, dy:dy + h, x1:x1 + w]
        a, b = images[:, :, :h, x0:x0 + w], images[:, :, dy:dy + h, x1:x1 + w]
        affinity = torch.exp(-((a - b) ** 2).sum(1) / (2 * AFFINITY_SIGMA ** 2))
        total = total + (affinity * (1 - (p * q).sum(1))).mean()
    return total / len(AFFINITY_SHIFTS)


def class_weights(labels: np.ndarray, lut: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse square-root frequency weights per channel, mean 1 over the classes present."""
    counts = np.bincount(lut[labels.ravel()], minlength=num_classes + 1)[:num_classes].astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = 1.0 / np.sqrt(counts[present] / counts.sum())
    weights[present] /= weights[present].mean()
    return torch.tensor(np.clip(weights, 0, 10.0), dtype=torch.float32)


def class_weight_frames(train_frames: list[tuple[int, int]], point_sources: set[int], every: int = 5) -> list:
    """The training frames whose labels set the class weights: every frame of a point-labelled source (a rare
    class may have a handful of points in all), every `every`-th frame of the rest (dense labels, plenty)."""
    return [(t, i) for n, (t, i) in enumerate(train_frames) if t in point_sources or n % every == 0]


def full_frame_logits(model, image: np.ndarray, shape: tuple[int, int], device, input_width: int,
                      normalisation: dict) -> torch.Tensor:
    """(C, H, W) logits of the network run on a whole (h, w, 3) uint8 frame at `input_width`, resized to `shape`."""
    size = network_size((image.shape[1], image.shape[0]), input_width)
    x = normalise(cv2.resize(image, size, interpolation=cv2.INTER_AREA)[None], normalisation).to(device)
    return F.interpolate(model(x), size=shape, mode="bilinear", align_corners=False)[0]


def confusion_matrices(model, transects, frames, lut, num_classes, device, input_width, normalisation: dict,
                       logit_offsets: list[torch.Tensor]) -> list[np.ndarray]:
    """(C, C) truth-by-prediction pixel counts on full frames, one matrix per (C,) offset added to the logits."""
    confusions = [np.zeros((num_classes, num_classes), np.int64) for _ in logit_offsets]
    with torch.inference_mode():
        for t, i in frames:
            labels = transects[t].labels[i]
            logits = full_frame_logits(model, transects[t].images[i], labels.shape, device, input_width, normalisation)
            truth = lut[labels]
            valid = truth < num_classes
            for confusion, offset in zip(confusions, logit_offsets):
                pred = (logits + offset.to(logits.device).view(-1, 1, 1)).argmax(0).cpu().numpy()
                confusion += np.bincount(truth[valid] * num_classes + pred[valid],
                                         minlength=num_classes ** 2).reshape(num_classes, num_classes)
    return confusions


def segmentation_metrics(confusion: np.ndarray) -> dict:
    """Pixel accuracy, mean IoU over the classes present in the truth, and IoU by class index."""
    tp = np.diag(confusion).astype(np.float64)
    present = confusion.sum(1) > 0
    iou = tp / np.maximum(confusion.sum(0) + confusion.sum(1) - tp, 1)
    return {"pixel_accuracy": float(tp.sum() / max(confusion.sum(), 1)),
            "miou": float(iou[present].mean()) if present.any() else 0.0,
            "iou": {int(k): float(iou[k]) for k in np.nonzero(present)[0]}}


def evaluate_segmentation(model, transects, frames, lut, num_classes, device, input_width, normalisation: dict) -> dict:
    """Pixel accuracy and mean IoU (over classes present in the truth) on full validation frames."""
    return segmentation_metrics(confusion_matrices(model, transects, frames, lut, num_classes, device, input_width,
                                                   normalisation, [torch.zeros(num_classes)])[0])


def adjust_logits(model, transects, frames, lut, weights: torch.Tensor, device, input_width, normalisation: dict) -> dict:
    """Undo part of the class-weighted loss's bias towards rare classes, as much as validation mIoU prefers.

    A loss that weights class c by w_c teaches logits that favour c by log w_c; subtracting alpha log w_c from
    the segmentation head's bias (alpha 0 = no change, 1 = the unweighted posterior) trades the rare classes'
    recall for their precision. The alpha with the best validation mIoU is folded into the head.
    """
    log_weights = torch.where(weights > 0, weights, torch.ones_like(weights)).log().cpu()
    confusions = confusion_matrices(model, transects, frames, lut, len(weights), device, input_width, normalisation,
                                    [-alpha * log_weights for alpha in LOGIT_ADJUSTMENTS])
    miou = [segmentation_metrics(c)["miou"] for c in confusions]
    best = int(np.argmax(miou))
    head = model.segmentation_head[0]
    with torch.no_grad():
        head.bias -= LOGIT_ADJUSTMENTS[best] * log_weights.to(head.bias.device)
    return {"alpha": LOGIT_ADJUSTMENTS[best], "validation_miou_by_alpha": dict(zip(LOGIT_ADJUSTMENTS, miou)),
            "note": "alpha x log(class weight) subtracted from the segmentation head's bias after training"}


def _describe_data(settings: SegmentationTraining) -> str:
    kinds = []
    if any(is_mask_folder(d) for d in settings.data):
        kinds.append("images with label masks (Cityscapes/Coralscapes layout or images/ + masks/)")
    if any(not is_point_folder(d) and not is_mask_folder(d) for d in settings.data):
        kinds.append("synthetic transects (reefmap synth)" + (
            f", {settings.points_per_image} random labelled points per image" if settings.points_per_image else ", dense labels"))
    if any(is_point_folder(d) for d in settings.data):
        kinds.append("point-annotated images (CoralNet Name,Row,Column,Label)")
    if settings.spread_points and (settings.points_per_image or any(is_point_folder(d) for d in settings.data)):
        kinds.append("point labels spread to nearby pixels of their colour")
    return "; ".join(kinds)


def train_segmentation(settings: SegmentationTraining, log=print) -> Path:
    """Train, checkpoint every evaluation, and write fp16 weights with their card to `settings.out`."""
    if not settings.data:
        raise UsageError("no training data: pass one or more `reefmap synth` folders")
    torch.manual_seed(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    taxonomy = default_taxonomy()
    num_classes = len(taxonomy)
    lut = np.full(256, num_classes, np.int64)
    lut[taxonomy.ids] = np.arange(num_classes)
    frame_size = (settings.input_width, int(round(settings.input_width * 9 / 16)))
    label_map = read_label_map(settings.label_map, taxonomy) if settings.label_map else None
    transects = []
    for folder in settings.data:
        if is_point_folder(folder):
            transects.append(load_point_annotations(folder, point_label_map(folder, taxonomy, settings.label_map),
                                                    settings.input_width))
        elif is_mask_folder(folder):
            transects.append(load_mask_folder(folder, frame_size, taxonomy, label_map))
        else:
            transects.append(load_transect(folder, frame_size))
    if settings.points_per_image:
        transects = [replace(tr, labels=simulated_point_annotation(tr.labels, settings.points_per_image, settings.seed, t))
                     for t, tr in enumerate(transects)]
    train_frames, val_frames = split_frames(transects, settings.val_fraction, settings.seed)
    log(f"loaded {len(transects)} sources: {len(train_frames)} training and {len(val_frames)} validation images")
    if settings.init:
        start = load_weights(settings.init, "segmentation", device)
        if not same_classes(start.taxonomy, taxonomy):
            raise UsageError(f"{settings.init} predicts the classes of taxonomy '{start.taxonomy.name}', not those of "
                             f"'{taxonomy.name}' that training uses; start from weights with the default classes")
        model = start.model
        settings = replace(settings, encoder=start.card["encoder"], decoder_channels=tuple(start.card["decoder_channels"]))
        log(f"starting from {settings.init} ({settings.encoder})")
    else:
        model = build_unet(settings.encoder, num_classes, settings.decoder_channels).to(device)
    encoder_start = None
    if settings.encoder_weights not in (None, *ENCODER_WEIGHTS):
        raise UsageError(f"unknown --encoder-weights '{settings.encoder_weights}': use one of {', '.join(ENCODER_WEIGHTS)}")
    if settings.init is None and settings.encoder_weights != "random" and (
            settings.encoder_weights == "imagenet" or has_imagenet_weights(settings.encoder)):
        encoder_start = load_imagenet_encoder(model, settings.encoder)
        settings = replace(settings, encoder_weights="imagenet")
        log(f"encoder {settings.encoder} starts from {encoder_start['source']}")
    elif settings.init is None:
        settings = replace(settings, encoder_weights="random")

    normalisation = training_normalisation(settings.colour_normalisation, start.card if settings.init else None)
    settings = replace(settings, colour_normalisation="per-image" if normalisation.get("per_image") else "fixed")
    point_sources = {t for t, folder in enumerate(settings.data) if settings.points_per_image or is_point_folder(folder)}
    if settings.affinity_weight is None:
        settings = replace(settings, affinity_weight=POINT_AFFINITY_WEIGHT if point_sources else 0.0)
    spread = {t: np.stack([spread_point_labels(image, labels, SPREAD_RADIUS * image.shape[1], SPREAD_COLOUR)
                           for image, labels in zip(transects[t].images, transects[t].labels)])
              for t in point_sources} if settings.spread_points else {}

    def training_labels(t: int, i: int) -> np.ndarray:
        """The labels the loss sees for frame `i` of source `t`: its points spread, or its labels as given."""
        return spread[t][i] if t in spread else transects[t].labels[i]

    weights = class_weights(np.concatenate([training_labels(t, i).ravel()
                                            for t, i in class_weight_frames(train_frames, point_sources)]),
                            lut, num_classes).to(device)

    def network_input(image: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 as the network sees it; statistics of the whole frame, as at inference."""
        return normalise(image[None], normalisation)[0].permute(1, 2, 0).numpy()

    teacher, teacher_temperature = None, 1.0
    if settings.teacher:
        teacher = load_weights(settings.teacher, "segmentation", device)
        if not same_classes(teacher.taxonomy, taxonomy):
            raise UsageError(f"teacher {settings.teacher} predicts the classes of taxonomy '{teacher.taxonomy.name}' "
                             f"({len(teacher.taxonomy)} outputs), not the {len(taxonomy)} that training uses; distil "
                             "from weights with the default classes")
        if teacher.card["normalisation"] != normalisation:
            raise UsageError(f"teacher {settings.teacher} normalises its input as {teacher.card['normalisation']}, "
                             f"the network being trained as {normalisation}; pass --colour-normalisation to match")
        teacher.model.eval()
        teacher_temperature = float(teacher.card.get("calibration", {}).get("temperature", 1.0))
        log(f"distilling from {settings.teacher} ({teacher.card['encoder']}, temperature {teacher_temperature:.2f})")
    point_frames = [f for f in train_frames if f[0] in point_sources]
    dense_frames = [f for f in train_frames if f[0] not in point_sources]
    point_count = int(round(settings.point_share * settings.batch_size)) if point_frames and dense_frames else None

    def draw_batch(rng) -> list[tuple[int, int]]:
        """Training frames for one step; `point_share` of them from the point-annotated photos when mixed."""
        if point_count is None:
            return [train_frames[k] for k in rng.integers(0, len(train_frames), settings.batch_size)]
        return ([point_frames[k] for k in rng.integers(0, len(point_frames), point_count)]
                + [dense_frames[k] for k in rng.integers(0, len(dense_frames), settings.batch_size - point_count)])

    def step(rng):
        batch = draw_batch(rng)
        crops = [random_crop(network_input(capture_artefacts(underwater_jitter(transects[t].images[i], rng), rng)),
                             training_labels(t, i), settings.crop, rng) for t, i in batch]
        x = torch.from_numpy(np.stack([c[0] for c in crops])).permute(0, 3, 1, 2).to(device)
        y = torch.from_numpy(lut[np.stack([c[1] for c in crops])]).to(device)
        logits = model(x)
        losses = {"loss": F.cross_entropy(logits, y, weight=weights, ignore_index=num_classes)}
        if teacher is not None:
            with torch.no_grad():
                target = teacher.model(x).float()
                if target.shape[2:] != logits.shape[2:]:  # e.g. a SegFormer's quarter-size output
                    target = F.interpolate(target, size=logits.shape[2:], mode="bilinear", align_corners=False)
                target = (target / teacher_temperature).log_softmax(1)
            losses["distill"] = settings.distill_weight * F.kl_div(logits.log_softmax(1), target, log_target=True,
                                                                   reduction="none").sum(1).mean()
        points = [k for k, (t, _) in enumerate(batch) if t in point_sources]
        if settings.affinity_weight and points:  # dense labels already say what lies between the points
            losses["affinity"] = settings.affinity_weight * len(points) / len(batch) * colour_affinity_loss(
                logits[points].softmax(1), x[points])
        return losses

    photo_sources = {t for t, folder in enumerate(settings.data) if is_point_folder(folder)}
    dense_val = [f for f in val_frames if f[0] not in photo_sources]  # synthetic or masked frames
    point_val = [f for f in val_frames if f[0] in photo_sources]  # the fixed validation photographs

    def validate():
        metrics = evaluate_segmentation(model, transects, dense_val or val_frames, lut, num_classes, device,
                                        settings.input_width, normalisation)
        scores = {k: metrics[k] for k in ("pixel_accuracy", "miou")}
        if point_val and dense_val:
            points = validation_point_scores(model, transects, point_val, lut, device, settings.input_width,
                                             normalisation, taxonomy)
            scores.update({f"points_{k}": points[k] for k in ("point_accuracy", "grouped_point_accuracy",
                                                               "live_coral_cover_error_points")})
        return scores

    loop = run_loop(model, settings, step, validate, log)
    adjustment = None
    if val_frames:
        adjustment = adjust_logits(model, transects, dense_val or val_frames, lut, weights, device,
                                   settings.input_width, normalisation)
        log(f"logit adjustment {adjustment['alpha']:g} (validation mIoU by alpha: "
            + ", ".join(f"{a:g} {m:.3f}" for a, m in adjustment["validation_miou_by_alpha"].items()) + ")")
    calibration = None
    if val_frames:
        logits, truth, _ = labelled_pixel_logits(model, transects, point_val or val_frames, lut, device,
                                                 settings.input_width, normalisation)
        calibration = fit_temperature(logits, truth)
        calibration["data"] = ("the fixed validation photographs of the point-annotated sources" if point_val
                               else "pixels of the validation frames")
        log(f"temperature {calibration['temperature']:.2f}: expected calibration error "
            f"{calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f} on {calibration['points']} labels")
    metrics = evaluate_segmentation(model, transects, dense_val or val_frames, lut, num_classes, device,
                                    settings.input_width, normalisation)
    card_metrics = {"validation": "held-out blocks of the synthetic training transects" if dense_val or not point_val
                    else "the fixed validation photographs",
                    "pixel_accuracy": metrics["pixel_accuracy"], "miou": metrics["miou"],
                    "iou_by_class": {taxonomy.classes[k].name: v for k, v in metrics["iou"].items()}}
    if point_val:
        card_metrics["validation_points"] = {
            "images": [f"{transects[t].name}/{transects[t].image_names[i]}" for t, i in point_val],
            **validation_point_scores(model, transects, point_val, lut, device, settings.input_width, normalisation,
                                      taxonomy)}
    card = segmentation_card(
        settings.encoder, taxonomy, network_size(frame_size, settings.input_width), settings.decoder_channels,
        training={"data": [Path(d).name for d in settings.data], "kind": _describe_data(settings),
                  "initialised_from": settings.init, "initialised_from_sha256": start.sha256 if settings.init else None,
                  "encoder_start": encoder_start,
                  "teacher": None if teacher is None else {"path": settings.teacher, "sha256": teacher.sha256,
                                                           "encoder": teacher.card["encoder"]},
                  "iterations": loop.iterations, "settings": asdict(settings), "command": " ".join(sys.argv),
                  "history": loop.history, "logit_adjustment": adjustment},
        metrics=card_metrics,
        normalisation=normalisation,
        calibration=calibration,
    )
    path = save_weights(model, card, settings.out)
    log(f"wrote {path} (pixel accuracy {metrics['pixel_accuracy']:.3f}, mIoU {metrics['miou']:.3f})")
    return path


def labelled_pixel_logits(model, sources, frames, lut, device, input_width, normalisation: dict,
                          per_frame: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, C) logits, (N,) true class indices and (N,) frame numbers at the labelled pixels of `frames` (at most
    `per_frame` of each, a fixed subsample), the network run on each whole frame and its logits resized to the
    labels' size."""
    num_classes = int(lut.max())
    all_logits, truths, owners = [], [], []
    with torch.inference_mode():
        for n, (t, i) in enumerate(frames):
            image, labels = sources[t].images[i], sources[t].labels[i]
            truth = lut[labels]
            ys, xs = np.nonzero(truth < num_classes)
            if len(ys) > per_frame:
                keep = np.random.default_rng(n).choice(len(ys), per_frame, replace=False)
                ys, xs = ys[keep], xs[keep]
            if not len(ys):
                continue
            logits = full_frame_logits(model, image, labels.shape, device, input_width, normalisation)
            all_logits.append(logits[:, ys, xs].T.float().cpu().numpy())
            truths.append(truth[ys, xs])
            owners.append(np.full(len(ys), n))
    if not all_logits:
        return np.zeros((0, num_classes), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(all_logits), np.concatenate(truths), np.concatenate(owners)


def validation_point_scores(model, sources, frames, lut, device, input_width, normalisation, taxonomy) -> dict:
    """`point_scores` of the network at the labelled points of `frames` (real photographs with expert points)."""
    logits, truth, owner = labelled_pixel_logits(model, sources, frames, lut, device, input_width, normalisation)
    return point_scores(truth, logits.argmax(1), owner, taxonomy)


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |accuracy - confidence| of the top class over equal-width confidence bins, weighted by bin size."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == truth
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        here = (confidence > lo) & (confidence <= hi)
        if here.any():
            error += here.mean() * abs(correct[here].mean() - confidence[here].mean())
    return float(error)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> dict:
    """Temperature scaling: the T in TEMPERATURES whose softmax(logits / T) has the least mean negative log
    likelihood of the true classes (the labels do not change, only how confident they are)."""
    if not len(truth):
        return {"temperature": 1.0, "points": 0, "note": "no labelled validation pixels: left uncalibrated"}

    def nll(t: float) -> float:
        p = softmax(logits / t)
        return float(-np.log(np.clip(p[np.arange(len(truth)), truth], 1e-12, None)).mean())

    losses = [nll(t) for t in TEMPERATURES]
    best = TEMPERATURES[int(np.argmin(losses))]
    return {"method": "temperature scaling (probabilities = softmax(logits / temperature))",
            "temperature": best, "points": int(len(truth)), "nll_before": nll(1.0), "nll_after": min(losses),
            "ece_before": expected_calibration_error(softmax(logits), truth),
            "ece_after": expected_calibration_error(softmax(logits / best), truth)}
