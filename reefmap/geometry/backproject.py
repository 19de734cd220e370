"""Pinhole back-projection and projection (OpenCV camera frame: x right, y down, z forward)."""

from __future__ import annotations

import numpy as np


def scale_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """(3, 3) intrinsics for an image resized from (w, h) `from_size` to `to_size` (pixel-centre convention)."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    out = K.astype(np.float64).copy()
    out[0, 0] *= sx
    out[1, 1] *= sy
    out[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    out[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return out


def backproject(depth_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(H, W) depth along the optical axis in metres -> (H, W, 3) float32 points in the camera frame."""
    h, w = depth_m.shape
    u = np.arange(w, dtype=np.float32)
    v = np.arange(h, dtype=np.float32)
    x = (u[None, :] - K[0, 2]) / K[0, 0] * depth_m
    y = (v[:, None] - K[1, 2]) / K[1, 1] * depth_m
    return np.stack([x, y, np.broadcast_to(depth_m, (h, w))], axis=-1).astype(np.float32)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 2) pixel coordinates (u, v)."""
    z = points[:, 2:3]
    return (points[:, :2] / z) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def reproject_depth(depth: np.ndarray, K: np.ndarray, source_to_target: np.ndarray) -> np.ndarray:
    """(H, W) depth of a source camera as a target camera with the same `K` and size sees it: every pixel with
    depth (> 0) is moved by the (4, 4) source-camera -> target-camera transform and lands on its nearest target
    pixel, the nearest surface winning; 0 where nothing lands."""
    h, w = depth.shape
    points = backproject(depth, K)[depth > 0].astype(np.float64)
    moved = points @ source_to_target[:3, :3].T + source_to_target[:3, 3]
    moved = moved[moved[:, 2] > 1e-6]
    uv = np.rint(project(moved, K)).astype(np.int64)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    flat = uv[inside, 1] * w + uv[inside, 0]
    out = np.full(h * w, np.inf)
    np.minimum.at(out, flat, moved[inside, 2])
    out[~np.isfinite(out)] = 0.0
    return out.reshape(h, w).astype(np.float32)
