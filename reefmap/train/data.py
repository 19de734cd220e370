"""Training data from `reefmap synth` folders: frames, class labels, depth and poses, held in memory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from reefmap.errors import UsageError
from reefmap.io.files import read_poses_csv
from reefmap.io.points import read_point_annotations, read_point_image, validation_images
from reefmap.io.video import open_capture
from reefmap.models.weights import IMAGENET_NORMALISATION, normalise_batch


@dataclass
class Transect:
    """One synthetic transect resized to `size`: (N, H, W, 3) uint8 RGB, (N, H, W) uint8 ids, (N, H, W) float16 m."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    poses: np.ndarray  # (N, 4, 4) camera-to-world
    fps: float


def load_transect(folder: str | Path, size: tuple[int, int]) -> Transect:
    """Decode a synth folder's video and truth at (w, h) `size` (undistorted frames are not needed: pinhole truth)."""
    folder = Path(folder)
    manifest_path = folder / "truth.json"
    if not manifest_path.exists():
        raise UsageError(f"{folder} is not a `reefmap synth` folder (no truth.json); render one with `reefmap synth`")
    manifest = json.loads(manifest_path.read_text())
    _, poses = read_poses_csv(folder / manifest["poses"])
    cap = open_capture(folder / manifest["video"])
    images, labels, depth = [], [], []
    for i in range(manifest["frames"]):
        ok, bgr = cap.read()
        if not ok:
            break
        images.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, interpolation=cv2.INTER_AREA))
        label = cv2.imread(str(folder / manifest["labels"].format(i)), cv2.IMREAD_UNCHANGED)
        labels.append(cv2.resize(label, size, interpolation=cv2.INTER_NEAREST))
        d = cv2.imread(str(folder / manifest["depth"].format(i)), cv2.IMREAD_UNCHANGED).astype(np.float32)
        depth.append(cv2.resize(d * manifest["depth_scale_m"], size, interpolation=cv2.INTER_NEAREST).astype(np.float16))
    cap.release()
    n = len(images)
    return Transect(folder.name, np.stack(images), np.stack(labels), np.stack(depth), poses[:n], float(manifest["fps"]))


def split_frames(transects: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """(source, frame) pairs for training and validation; validation takes whole blocks of consecutive frames
    (a tenth of a source each) to limit leakage between neighbouring frames, or a source's own fixed `validation`
    images where it has them. Training is never left empty."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    n_val_blocks = max(1, int(round(10 * val_fraction))) if val_fraction else 0
    for t, tr in enumerate(transects):
        n = len(tr.images)
        fixed = getattr(tr, "validation", None)
        if fixed is not None:
            for i in range(n):
                (val if i in fixed else train).append((t, i))
            continue
        val_blocks = set(rng.choice(10, size=n_val_blocks, replace=False).tolist())
        for i in range(n):
            (val if min(10 * i // n, 9) in val_blocks else train).append((t, i))
    if not train:
        train, val = val, []
    return train, val


def underwater_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour augmentation: brightness/contrast, per-channel gains (water colour) and a veil of blue-green haze."""
    x = image.astype(np.float32) / 255.0
    x = (x - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.12, 0.12)
    x *= rng.uniform(0.75, 1.25, 3).astype(np.float32)
    veil = np.array([rng.uniform(0.0, 0.2), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.8)], np.float32)
    haze = rng.uniform(0.0, 0.3)
    x = x * (1 - haze) + veil * haze
    x += rng.normal(0, rng.uniform(0.0, 0.03), x.shape).astype(np.float32)
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def capture_artefacts(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a camera and its encoder do to a frame: Gaussian blur (defocus, motion) on 30 % of images, JPEG
    compression at quality 35-90 on half of them; uint8 RGB in and out."""
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 91))])
        image = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return image


def random_crop(image: np.ndarray, labels: np.ndarray, crop: tuple[int, int], rng: np.random.Generator,
                max_zoom: float = 1.4) -> tuple[np.ndarray, np.ndarray]:
    """The same random zoom, (w, h) crop and horizontal flip for an image and its label map."""
    h, w = labels.shape
    zoom = rng.uniform(1.0, max_zoom)
    cw, ch = min(w, int(round(crop[0] / zoom))), min(h, int(round(crop[1] / zoom)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    image = cv2.resize(image[y0:y0 + ch, x0:x0 + cw], crop, interpolation=cv2.INTER_AREA)
    labels = cv2.resize(labels[y0:y0 + ch, x0:x0 + cw], crop, interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.5:
        image, labels = image[:, ::-1].copy(), labels[:, ::-1].copy()
    return image, labels


def normalise(images: np.ndarray, normalisation: dict = IMAGENET_NORMALISATION) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float tensor normalised as a weights card's `normalisation` says."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return normalise_batch(x, normalisation)


@dataclass
class VideoClip:
    """Frames of a real video for self-supervised training: (N, h, w, 3) uint8 at network size and K (3, 3) for it."""

    name: str
    images: np.ndarray
    K: np.ndarray


def load_video_clip(path: str | Path, input_width: int, fps: float) -> VideoClip:
    """Sample, undistort and resize a video (camera profile chosen as `reefmap process` does)."""
    from reefmap.geometry.backproject import scale_intrinsics
    from reefmap.perception.networks import network_size
    from reefmap.io.video import FrameSource

    source = FrameSource([path], fps=fps, width=input_width)
    size = network_size(source.size, input_width)
    images = np.stack([cv2.resize(f.image, size, interpolation=cv2.INTER_AREA) for f in source])
    if len(images) < 3:
        raise UsageError(f"{path} gives {len(images)} frames at {fps:g} fps; self-supervised training needs at least 3")
    return VideoClip(Path(path).name, images, scale_intrinsics(source.camera.K, source.size, size))


def is_synth_folder(path: str | Path) -> bool:
    return (Path(path) / "truth.json").exists()


@dataclass
class LabelledImages:
    """Still images with (H, W) uint8 class-id maps, 0 where unlabelled (e.g. all but a few annotated points).

    `validation` lists the indices of the images kept for validation only (a fixed split of real photographs);
    None lets the trainer split the images itself.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    image_names: tuple[str, ...] = ()
    validation: tuple[int, ...] | None = None


def load_point_annotations(folder: str | Path, label_map: dict[str, int | None], width: int) -> LabelledImages:
    """CoralNet-style points (see `is_point_folder`), images resized to `width` with the folder's median aspect
    ratio kept; each annotated point becomes one labelled pixel, codes mapped to None or missing from `label_map`
    are skipped. The fixed validation images are those of `validation_images`."""
    folder = Path(folder)
    points = read_point_annotations(folder)
    names = sorted(points)
    photos = [read_point_image(folder, name) for name in names]
    aspect = float(np.median([p.shape[0] / p.shape[1] for p in photos]))
    size = (width, max(1, int(round(width * aspect))))
    images, labels = [], []
    for name, rgb in zip(names, photos):
        h, w = rgb.shape[:2]
        images.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
        label = np.zeros((size[1], size[0]), np.uint8)
        for r, c, code in points[name]:
            if label_map.get(code) is not None and 0 <= r < h and 0 <= c < w:
                label[min(size[1] - 1, r * size[1] // h), min(size[0] - 1, c * size[0] // w)] = label_map[code]
        labels.append(label)
    held_out = validation_images(names)
    return LabelledImages(folder.name, np.stack(images), np.stack(labels), tuple(names),
                          tuple(i for i, n in enumerate(names) if n in held_out))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def is_mask_folder(path: str | Path) -> bool:
    """A folder of images with label masks: Cityscapes layout (leftImg8bit/, gtFine/, as Coralscapes ships) or
    images/ beside masks/."""
    path = Path(path)
    return ((path / "leftImg8bit").is_dir() and (path / "gtFine").is_dir()) or \
        ((path / "images").is_dir() and (path / "masks").is_dir())


def mask_pairs(folder: str | Path, split: str | None = None) -> list[tuple[Path, Path]]:
    """(image, mask) paths of a mask folder. Cityscapes layout: leftImg8bit/<split>/<group>/<name>_leftImg8bit.png
    with gtFine/<split>/<group>/<name>_gtFine_labelIds.png (or _gtFine.png); `split` picks train/val/test (default
    all). images/ + masks/: masks/<name>.png beside images/<name>.<png|jpg>. Images without a mask are skipped."""
    folder = Path(folder)
    pairs = []
    if (folder / "leftImg8bit").is_dir():
        root = folder / "leftImg8bit" / (split or "")
        for image in sorted(p for p in root.rglob("*_leftImg8bit.*") if p.suffix.lower() in IMAGE_SUFFIXES):
            stem = image.name[:image.name.rindex("_leftImg8bit")]
            labels = folder / "gtFine" / image.parent.relative_to(folder / "leftImg8bit")
            mask = next((m for m in (labels / f"{stem}_gtFine_labelIds.png", labels / f"{stem}_gtFine.png")
                         if m.exists()), None)
            if mask is not None:
                pairs.append((image, mask))
    else:
        for image in sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            mask = folder / "masks" / f"{image.stem}.png"
            if mask.exists():
                pairs.append((image, mask))
    return pairs


def load_mask_folder(folder: str | Path, size: tuple[int, int], taxonomy, value_map: dict[str, int] | None = None,
                     split: str | None = None) -> LabelledImages:
    """Images and their label masks resized to (w, h) `size`. Mask values are class ids of `taxonomy` (so
    Coralscapes masks load as they are), or are mapped by `value_map` ("mask value" -> class id); values that are
    neither become 0 (not trained on)."""
    lut = np.zeros(256, np.uint8)
    if value_map is None:
        lut[taxonomy.ids] = taxonomy.ids
    else:
        for value, class_id in value_map.items():
            if not value.isdigit() or int(value) > 255:
                raise UsageError(f"label map key '{value}' is not a mask value (0-255) for the masks in {folder}")
            lut[int(value)] = class_id
    images, labels = [], []
    for image_path, mask_path in mask_pairs(folder, split):
        bgr, mask = cv2.imread(str(image_path)), cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        if bgr is None or mask is None or mask.ndim != 2:
            raise UsageError(f"{image_path} or its mask {mask_path} cannot be read as an image and a one-channel "
                             "class-id PNG")
        images.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, interpolation=cv2.INTER_AREA))
        labels.append(lut[cv2.resize(np.clip(mask, 0, 255).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)])
    if not images:
        raise UsageError(f"{folder} has no image with a label mask (expected leftImg8bit/ + gtFine/ or images/ + masks/)")
    return LabelledImages(Path(folder).name, np.stack(images), np.stack(labels))


def keep_random_points(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of a label map with only `count` random labelled pixels kept (the rest 0): simulated point annotation."""
    out = np.zeros_like(labels)
    ys, xs = np.nonzero(labels)
    if len(ys):
        pick = rng.choice(len(ys), size=min(count, len(ys)), replace=False)
        out[ys[pick], xs[pick]] = labels[ys[pick], xs[pick]]
    return out


def simulated_point_annotation(labels: np.ndarray, count: int, seed: int, source: int) -> np.ndarray:
    """(N, H, W) dense label maps reduced to `count` random points each, drawn once from (`seed`, `source`): the
    fixed annotation an ecologist gives each image, for training and validation alike (never new points per step)."""
    rng = np.random.default_rng([seed, source])
    return np.stack([keep_random_points(frame, count, rng) for frame in labels])


def spread_point_labels(image: np.ndarray, labels: np.ndarray, radius: float, colour_tolerance: float) -> np.ndarray:
    """A copy of a sparse label map (0 = unlabelled) where each unlabelled pixel takes the label of the annotated
    point nearest to it in position and colour together, when that point lies within one unit of
    (distance / `radius` pixels)^2 + (CIELAB colour difference / `colour_tolerance`)^2: pixels that look like a
    nearby point share its class, as superpixel label propagation does for sparse coral annotations."""
    ys, xs = np.nonzero(labels)
    if len(ys) == 0:
        return labels.copy()
    h, w = labels.shape
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    best = np.full((h, w), 1.0, np.float32)
    spread = labels.copy()
    r = int(np.ceil(radius))
    for y, x in zip(ys, xs):
        y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
        gy, gx = np.ogrid[y0:y1, x0:x1]
        distance = ((gy - y) ** 2 + (gx - x) ** 2) / radius ** 2 + \
            ((lab[y0:y1, x0:x1] - lab[y, x]) ** 2).sum(-1) / colour_tolerance ** 2
        closer = distance < best[y0:y1, x0:x1]
        best[y0:y1, x0:x1][closer] = distance[closer]
        spread[y0:y1, x0:x1][closer] = labels[y, x]
    return spread
