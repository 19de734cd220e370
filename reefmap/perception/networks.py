"""Batched per-frame perception on a device: class probabilities, depth and relative camera motion."""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
import torch

from reefmap.errors import UsageError
from reefmap.geometry.transforms import pose_vector_to_matrix
from reefmap.io.video import Frame
from reefmap.models.weights import LoadedWeights, default_weights, load_weights, normalise_batch
from reefmap.perception.tape import detect_tape, mark_tape
from reefmap.runtime.timing import StageTimer

SMOOTHING_KERNEL = (1.0, 2.0, 1.0)
FEATURELESS_TEXTURE = 6.0  # mean |Laplacian| (grey levels) at quarter size: seabed frames measure 25-35


def texture(image: np.ndarray) -> float:
    """Mean absolute Laplacian of the grey image at a quarter of its size (sensor noise averages out)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)).mean())


def is_featureless(image: np.ndarray) -> bool:
    """A black, blank or open-water frame: nothing for the networks to see, so nothing to map or to track."""
    return texture(image) < FEATURELESS_TEXTURE


def load_networks(seg_weights: str | None, depth_weights: str | None, device: torch.device):
    """The segmenter and the depth/pose estimator from these weights files (None: the installed defaults)."""
    seg_path = Path(seg_weights) if seg_weights else default_weights("segmentation")
    depth_path = Path(depth_weights) if depth_weights else default_weights("depth_pose")
    return (Segmenter(load_weights(seg_path, "segmentation", device), device),
            DepthPoseEstimator(load_weights(depth_path, "depth_pose", device), device))


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; an unavailable device is a usage error."""
    name = name.lower()
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cpu" or (name.startswith("cuda") and cuda) or (name == "mps" and mps):
        return torch.device(name)
    if name.startswith("cuda") or name == "mps":
        raise UsageError(f"--device {name} is not available on this machine; use --device cpu or auto")
    raise UsageError(f"unknown --device '{name}'; use auto, cpu, cuda, cuda:N or mps")


def network_size(image_size: tuple[int, int], input_width: int) -> tuple[int, int]:
    """(w, h) for a network: width `input_width`, aspect kept, both multiples of 32."""
    w, h = image_size
    nw = max(32, int(round(input_width / 32.0)) * 32)
    nh = max(32, int(round(h * nw / w / 32.0)) * 32)
    return nw, nh


def to_batch(images: list[np.ndarray], size: tuple[int, int], normalisation: dict, device: torch.device) -> torch.Tensor:
    """List of (H, W, 3) uint8 RGB -> (B, 3, h, w) float normalised tensor on `device`, channels-last."""
    resized = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images])
    x = torch.from_numpy(resized).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    return normalise_batch(x, normalisation).contiguous(memory_format=torch.channels_last)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class _Network:
    """A loaded network on a device, with the input width and normalisation its card prescribes."""

    def __init__(self, weights: LoadedWeights, device: torch.device, input_width: int | None = None):
        self.weights = weights
        self.model = weights.model.to(device).to(memory_format=torch.channels_last)
        self.device = device
        self.input_width = input_width or weights.card["input_size"][0]
        self.normalisation = weights.card["normalisation"]

    def prepare(self, images: list[np.ndarray]) -> torch.Tensor:
        """Frames resized to the network size and normalised, as a batch on the device."""
        size = network_size((images[0].shape[1], images[0].shape[0]), self.input_width)
        return to_batch(images, size, self.normalisation, self.device)


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Offsets of windows `window` long every `stride` along `length`, the last one ending at the end."""
    if length <= window:
        return [0]
    return list(range(0, length - window, stride)) + [length - window]


def sliding_window_logits(model, batch: torch.Tensor, window: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """The network run on overlapping (w, h) `window`s every `stride` pixels and its logits averaged where windows
    overlap; at the network's output resolution (which may be a fraction of the input's)."""
    height, width = batch.shape[2:]
    win_w, win_h = min(window[0], width), min(window[1], height)
    total = count = None
    for y in window_starts(height, win_h, stride[1]):
        for x in window_starts(width, win_w, stride[0]):
            logits = model(batch[:, :, y:y + win_h, x:x + win_w]).float()
            scale = logits.shape[-1] / win_w
            if total is None:
                total = logits.new_zeros((*logits.shape[:2], round(height * scale), round(width * scale)))
                count = logits.new_zeros((1, 1, *total.shape[2:]))
            top, left = round(y * scale), round(x * scale)
            total[:, :, top:top + logits.shape[2], left:left + logits.shape[3]] += logits
            count[:, :, top:top + logits.shape[2], left:left + logits.shape[3]] += 1
    return total / count


class Segmenter(_Network):
    """Runs the segmentation network on batches of frames and returns per-class probabilities at its output size
    (the input size for a U-Net, a quarter of it for a SegFormer); a card with a `sliding_window` is run window by
    window."""

    @property
    def taxonomy(self):
        return self.weights.taxonomy

    @torch.inference_mode()
    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """(B, C, h, w) float32 softmax probabilities."""
        batch = self.prepare(images)
        windows = self.weights.card.get("sliding_window")
        with _autocast(self.device):
            if windows:
                logits = sliding_window_logits(self.model, batch, windows["window"], windows["stride"])
            else:
                logits = self.model(batch)
        return torch.softmax(logits.float() / self.temperature, dim=1).cpu().numpy()

    @property
    def temperature(self) -> float:
        """What the card's calibration divides the logits by, so probabilities match accuracy (1: uncalibrated)."""
        return float(self.weights.card.get("calibration", {}).get("temperature", 1.0))


class DepthPoseEstimator(_Network):
    """Runs the depth network per frame and the pose network on consecutive pairs."""

    def __init__(self, weights: LoadedWeights, device: torch.device, input_width: int | None = None):
        super().__init__(weights, device, input_width)
        self._previous: torch.Tensor | None = None

    @property
    def previous_frame(self) -> np.ndarray | None:
        """The last frame of the last batch, as the pose network saw it: the pair partner of the next frame."""
        return None if self._previous is None else self._previous.float().cpu().numpy()

    @previous_frame.setter
    def previous_frame(self, value: np.ndarray | None) -> None:
        self._previous = None if value is None else torch.from_numpy(value).to(self.device).contiguous(
            memory_format=torch.channels_last)

    @torch.inference_mode()
    def depth(self, batch: torch.Tensor) -> np.ndarray:
        """(B, h, w) float32 depth in the network's units (metres when metrically trained)."""
        with _autocast(self.device):
            return self.model.depth(batch).float().cpu().numpy()

    @torch.inference_mode()
    def relative_poses(self, batch: torch.Tensor) -> list[np.ndarray | None]:
        """T_prev<-curr (4, 4) for each frame of the batch; None for the very first frame of the stream."""
        previous = batch[:-1] if self._previous is None else torch.cat([self._previous, batch[:-1]])
        currents = batch if self._previous is not None else batch[1:]
        self._previous = batch[-1:]
        out: list[np.ndarray | None] = [] if len(previous) == len(batch) else [None]
        if len(currents):
            with _autocast(self.device):
                vecs = self.model.pose(torch.cat([previous, currents], dim=1)).float().cpu().numpy()
            out += [pose_vector_to_matrix(v.astype(np.float64)) for v in vecs]
        return out


@dataclass(frozen=True)
class Perception:
    """What the networks say about one frame."""

    frame: Frame
    probabilities: np.ndarray  # (C, h, w) float32 class probabilities, temporally smoothed
    depth: np.ndarray  # (h', w') float32 depth
    relative_pose: np.ndarray | None  # (4, 4) T_prev<-curr, None for the first frame


class TemporalSmoother:
    """Averages each frame's probabilities with its neighbours (weights 1:2:1), with one frame of delay.

    The first and last frames use the one neighbour they have (weights 2:1 and 1:2). `window` holds the raw
    frames still needed; it is all the state there is, so a stream can be resumed from it.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.window: deque[Perception] = deque(maxlen=3)
        self.started = False  # whether a first frame has been given out

    def push(self, item: Perception) -> list[Perception]:
        """The frames that can be given out once `item` has arrived."""
        if not self.enabled:
            return [item]
        self.window.append(item)
        if len(self.window) == 2 and not self.started:
            self.started = True
            return [_weighted(self.window[0], [self.window[0], self.window[1]], (2.0, 1.0))]
        if len(self.window) == 3:
            return [_weighted(self.window[1], list(self.window), SMOOTHING_KERNEL)]
        return []

    def finish(self) -> list[Perception]:
        """The last frame, once the stream has ended."""
        if not self.enabled or not self.window:
            return []
        if len(self.window) == 1:
            return [self.window[0]]
        return [_weighted(self.window[-1], [self.window[-2], self.window[-1]], (1.0, 2.0))]


def smooth_over_time(items: Iterable[Perception], enabled: bool = True) -> Iterator[Perception]:
    """`TemporalSmoother` over a stream of perceptions."""
    smoother = TemporalSmoother(enabled)
    for item in items:
        yield from smoother.push(item)
    yield from smoother.finish()


def _weighted(centre: Perception, neighbours: list[Perception], weights: tuple[float, ...]) -> Perception:
    probs = sum(w * n.probabilities for w, n in zip(weights, neighbours)) / sum(weights)
    return Perception(centre.frame, probs.astype(np.float32), centre.depth, centre.relative_pose)


def perceive(frames: Iterable[Frame], segmenter: Segmenter, estimator: DepthPoseEstimator,
             batch_size: int, timer: StageTimer, with_motion: bool = True, tape_detection: bool = True) -> Iterator[Perception]:
    """Stream frames through both networks in batches of `batch_size`; without `with_motion` the pose network
    is not run (the camera path is known) and every `relative_pose` is None. With `tape_detection` (and a tape class
    in the segmenter's taxonomy) the line detector's tape is written into the class probabilities (`reefmap.perception.tape`)."""
    tape_channels = np.flatnonzero(np.isin(segmenter.taxonomy.ids, segmenter.taxonomy.ids_with_role("transect_line")))
    iterator = iter(frames)
    while True:
        with timer.stage("decode"):
            batch = [f for _, f in zip(range(batch_size), iterator)]
        if not batch:
            return
        images = [f.image for f in batch]
        with timer.stage("segmentation", len(batch)):
            probs = segmenter.probabilities(images)
        if tape_detection and len(tape_channels):
            with timer.stage("tape", len(batch)):
                for p, image in zip(probs, images):
                    mark_tape(p, detect_tape(image), int(tape_channels[0]))
        with timer.stage("depth", len(batch)):
            tensor = estimator.prepare(images)
            depths = estimator.depth(tensor)
        poses = [None] * len(batch)
        if with_motion:
            with timer.stage("pose", len(batch)):
                poses = estimator.relative_poses(tensor)
        for frame, p, d, pose in zip(batch, probs, depths, poses):
            yield Perception(frame, p, d, pose)
