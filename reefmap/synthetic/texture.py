"""Real seabed appearance for synthetic reefs: per-class texture tiles quilted from patches of photographs cut
around expert point labels (CoralNet-style folders), so dense synthetic labels come with real colour and texture.

Only the training side of a point folder is used: its fixed validation photographs (`io.points.validation_images`)
never enter a texture, so they stay unseen by anything trained on the renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reefmap.errors import UsageError
from reefmap.io.points import (
    is_point_folder, point_label_map, read_point_annotations, read_point_image, validation_images,
)

TEXEL_M = 0.0025  # seabed size of one texel of a tile
PATCH_M = 0.05  # side of the square cut around each expert point
TILE_TEXELS = 256  # a tile repeats every 0.64 m
MIN_PATCHES = 5  # fewer points of a class than this give it no tile
EDGE_MARGIN = 0.1  # of a photograph's width and height: points whose square reaches into it (a quadrat's frame) are
# not cut


@dataclass(frozen=True)
class ClassTextures:
    """Tileable (S, S, 3) float32 RGB tiles in 0..1 by class id, `texel_m` metres per texel."""

    tiles: dict[int, np.ndarray]
    patches: dict[int, int]
    photos: int
    source: str
    texel_m: float = TEXEL_M

    def describe(self) -> dict:
        return {"source": self.source, "photos": self.photos, "texel_m": self.texel_m,
                "patches_by_class": {str(k): v for k, v in sorted(self.patches.items())}}


def cut_patch(image: np.ndarray, row: int, column: int, side_px: int, side_texels: int) -> np.ndarray:
    """The (side_texels, side_texels, 3) float32 square of `image` (RGB uint8) of `side_px` pixels around a point,
    moved inside the image where the point is near an edge."""
    h, w = image.shape[:2]
    side_px = min(side_px, h, w)
    y0 = int(np.clip(row - side_px // 2, 0, h - side_px))
    x0 = int(np.clip(column - side_px // 2, 0, w - side_px))
    square = image[y0:y0 + side_px, x0:x0 + side_px]
    return cv2.resize(square, (side_texels, side_texels), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def typical_patches(patches: list[np.ndarray], spread: float = 3.0) -> list[np.ndarray]:
    """The patches whose mean colour lies within `spread` median absolute deviations of the class's median in every
    channel: drops squares that caught a quadrat frame, a tape or another class's colony."""
    means = np.array([p.reshape(-1, 3).mean(axis=0) for p in patches])
    median = np.median(means, axis=0)
    deviation = np.median(np.abs(means - median), axis=0) + 1e-3
    keep = np.all(np.abs(means - median) <= spread * deviation, axis=1)
    return [p for p, k in zip(patches, keep) if k]


def quilt_tile(patches: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """A tileable (size, size, 3) image of randomly rotated and flipped `patches` (all p x p) laid on a jittered grid
    with half-patch overlap and blended with smooth windows, wrapping at the edges."""
    p = patches[0].shape[0]
    stride = max(1, p // 2)
    jitter = max(1, p // 8)
    window = np.sin(np.pi * (np.arange(p) + 0.5) / p) ** 2
    weight = (np.outer(window, window) + 1e-3)[..., None].astype(np.float32)
    total = np.zeros((size, size, 3), np.float32)
    weights = np.zeros((size, size, 1), np.float32)
    for y in range(0, size, stride):
        for x in range(0, size, stride):
            patch = np.rot90(patches[int(rng.integers(len(patches)))], int(rng.integers(4)))
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            rows = (np.arange(p) + y + int(rng.integers(-jitter, jitter + 1))) % size
            cols = (np.arange(p) + x + int(rng.integers(-jitter, jitter + 1))) % size
            total[np.ix_(rows, cols)] += weight * patch
            weights[np.ix_(rows, cols)] += weight
    return total / np.maximum(weights, 1e-6)


def class_textures(folder: str | Path, taxonomy, label_map_path: str | Path | None = None,
                   photo_width_m: float = 0.5, seed: int = 0) -> ClassTextures:
    """Tiles for every class with at least `MIN_PATCHES` expert points in the training photographs of `folder`;
    `photo_width_m` is the seabed width one photograph spans (0.5 m for a standard photoquadrat)."""
    folder = Path(folder)
    if not is_point_folder(folder):
        raise UsageError(f"--texture-photos {folder} is not a folder of point-annotated photographs (annotations.csv "
                         "beside the images, or CoralNet's images/ and annotations/)")
    if photo_width_m <= 0:
        raise UsageError(f"--texture-photo-width-m {photo_width_m:g} must be positive")
    label_map = point_label_map(folder, taxonomy, label_map_path)
    points = read_point_annotations(folder)
    held_out = validation_images(sorted(points))
    side_texels = int(round(PATCH_M / TEXEL_M))
    by_class: dict[int, list[np.ndarray]] = {}
    photos = 0
    for name in sorted(set(points) - held_out):
        rgb = read_point_image(folder, name)
        side_px = max(2, int(round(PATCH_M / photo_width_m * rgb.shape[1])))
        photos += 1
        h, w = rgb.shape[:2]
        low, high = EDGE_MARGIN + PATCH_M / photo_width_m / 2, 1 - EDGE_MARGIN - PATCH_M / photo_width_m / 2
        for row, column, code in points[name]:
            class_id = label_map.get(code)
            if class_id is not None and low <= row / h <= high and low <= column / w <= high:
                by_class.setdefault(class_id, []).append(cut_patch(rgb, row, column, side_px, side_texels))
    rng = np.random.default_rng(seed)
    by_class = {c: typical_patches(p) for c, p in sorted(by_class.items()) if len(p) >= MIN_PATCHES}
    tiles = {c: quilt_tile(p, TILE_TEXELS, rng) for c, p in by_class.items() if len(p) >= MIN_PATCHES}
    if not tiles:
        raise UsageError(f"{folder}: no class has {MIN_PATCHES} or more expert points in its training photographs "
                         "to texture the synthetic seabed with")
    return ClassTextures(tiles, {c: len(by_class[c]) for c in tiles}, photos, str(folder))


def sample_tile(tile: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N, 3) bilinear samples of a tileable (S, S, 3) `tile` at texel coordinates (u across, v down), wrapping."""
    size = tile.shape[0]
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = (u - u0)[:, None], (v - v0)[:, None]
    x0, y0 = u0.astype(np.int64) % size, v0.astype(np.int64) % size
    x1, y1 = (x0 + 1) % size, (y0 + 1) % size
    top = tile[y0, x0] * (1 - fu) + tile[y0, x1] * fu
    bottom = tile[y1, x0] * (1 - fu) + tile[y1, x1] * fu
    return top * (1 - fv) + bottom * fv


TRIPLANAR_AXES = ((1, 2), (0, 2), (0, 1))  # the coordinates a texture runs along when projected along x, y, z


def triplanar_weights(normals: np.ndarray) -> np.ndarray:
    """(N, 3) blend of the projections along x, y and z for surfaces of these `normals` (sharpened, summing to 1)."""
    weights = normals ** 4
    return weights / (weights.sum(axis=1, keepdims=True) + 1e-9)


def triplanar_colour(tile: np.ndarray, points: np.ndarray, normals: np.ndarray, texel_m: float) -> np.ndarray:
    """(N, 3) colour of `tile` projected on surface `points` along x, y and z, blended by the `normals`."""
    weights = triplanar_weights(normals)
    out = np.zeros((len(points), 3), np.float32)
    for axis, (a, b) in enumerate(TRIPLANAR_AXES):
        out += weights[:, axis:axis + 1] * sample_tile(tile, points[:, a] / texel_m, points[:, b] / texel_m)
    return out
