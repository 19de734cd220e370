"""Multi-view depth by plane sweep: for each depth plane in front of a reference camera the neighbouring views are
warped onto it, and each pixel takes the depth where the views agree best (zero-mean normalised cross-correlation).
Batched torch, so it runs on a GPU when there is one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from reefmap.geometry.backproject import reproject_depth
from reefmap.geometry.transforms import invert_pose


@dataclass
class SweepSettings:
    """Planes uniform in inverse depth between the near and far limits; NCC over `window` x `window` pixels."""

    planes: int = 64
    window: int = 5
    min_ncc: float = 0.6  # pixels whose best agreement is weaker get no depth
    min_contrast: float = 2.0 / 255  # standard deviation of the window below which a pixel has no texture to match
    max_plane_gap: int = 2  # each source's own best plane must lie this close to the joint one
    max_local_spread: float = 0.05  # relative distance to the 3x3 median depth beyond which a pixel is an outlier


def _grey(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 1, H, W) float32 in [0, 1]."""
    rgb = images.float().permute(0, 3, 1, 2) / 255.0
    return (0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]).contiguous()


def _local_stats(x: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    mean = F.avg_pool2d(x, window, 1, window // 2, count_include_pad=False)
    var = F.avg_pool2d(x * x, window, 1, window // 2, count_include_pad=False) - mean * mean
    return mean, var.clamp_min(0.0)


@torch.inference_mode()
def sweep_depth(reference: np.ndarray, sources: list[np.ndarray], K: np.ndarray, reference_pose: np.ndarray,
                source_poses: list[np.ndarray], near: float, far: float, settings: SweepSettings = SweepSettings(),
                device: torch.device = torch.device("cpu")) -> tuple[np.ndarray, np.ndarray]:
    """Depth (H, W) float32 of `reference` (H, W, 3 uint8) from `sources` seen by pinhole `K` at camera-to-world
    poses; 0 where no plane matched (too little texture, occluded or out of view), where the sources disagree on
    the best plane, or where the depth stands out of its 3x3 neighbourhood. Also the best NCC (H, W)."""
    h, w = reference.shape[:2]
    images = torch.from_numpy(np.stack([reference, *sources])).to(device)
    grey = _grey(images)
    ref, src = grey[:1], grey[1:]
    inverse = torch.linspace(1.0 / near, 1.0 / far, settings.planes, device=device)
    depths = 1.0 / inverse  # (D,)
    Kt = torch.as_tensor(K, dtype=torch.float32, device=device)
    v, u = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                          torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    rays = torch.stack([(u - Kt[0, 2]) / Kt[0, 0], (v - Kt[1, 2]) / Kt[1, 1], torch.ones_like(u)], -1)  # (H, W, 3)
    ref_mean, ref_var = _local_stats(ref, settings.window)
    ref_std = ref_var.sqrt()
    scores = torch.zeros((len(sources), settings.planes, h, w), device=device)
    counted = torch.zeros((len(sources), settings.planes, h, w), device=device)
    for k, pose in enumerate(source_poses):
        relative = np.linalg.inv(pose) @ reference_pose  # reference camera -> source camera
        R = torch.as_tensor(relative[:3, :3], dtype=torch.float32, device=device)
        t = torch.as_tensor(relative[:3, 3], dtype=torch.float32, device=device)
        for chunk in torch.split(torch.arange(settings.planes, device=device), 16):
            points = rays[None] * depths[chunk, None, None, None]  # (d, H, W, 3) in the reference camera
            moved = points @ R.T + t
            z = moved[..., 2].clamp_min(1e-6)
            grid = torch.stack([(Kt[0, 0] * moved[..., 0] / z + Kt[0, 2]) / (w - 1) * 2 - 1,
                                (Kt[1, 1] * moved[..., 1] / z + Kt[1, 2]) / (h - 1) * 2 - 1], -1)
            warped = F.grid_sample(src[k:k + 1].expand(len(chunk), -1, -1, -1), grid, align_corners=True,
                                   padding_mode="zeros")
            inside = ((grid.abs() <= 1).all(-1) & (moved[..., 2] > 0)).float()
            warped_mean, warped_var = _local_stats(warped, settings.window)
            product = F.avg_pool2d(warped * ref, settings.window, 1, settings.window // 2, count_include_pad=False)
            ncc = (product - warped_mean * ref_mean) / (warped_var.sqrt() * ref_std + 1e-6)
            scores[k, chunk] = ncc[:, 0] * inside
            counted[k, chunk] = inside
    seen = counted.sum(0)
    mean_score = torch.where(seen > 0, scores.sum(0) / seen.clamp_min(1), torch.full_like(seen, -1.0))
    best_score, best = mean_score.max(0)
    depth = _refined_depth(mean_score, best, inverse)
    valid = (best_score >= settings.min_ncc) & (ref_std[0, 0] >= settings.min_contrast)
    valid &= (best > 0) & (best < settings.planes - 1)  # the true surface may lie beyond the swept range
    for k in range(len(sources)):
        own = torch.where(counted[k] > 0, scores[k], torch.full_like(seen, -1.0)).argmax(0)
        valid &= ((own - best).abs() <= settings.max_plane_gap) | (counted[k].amax(0) == 0)
    depth = torch.where(valid, depth, torch.zeros_like(depth))
    depth = torch.where(_stands_out(depth, settings.max_local_spread), torch.zeros_like(depth), depth)
    return depth.cpu().numpy().astype(np.float32), best_score.cpu().numpy().astype(np.float32)


def _stands_out(depth: torch.Tensor, spread: float) -> torch.Tensor:
    """Pixels with depth farther than `spread` (relative) from the median of their 3x3 neighbourhood's depths."""
    patches = F.unfold(depth[None, None], 3, padding=1)[0]  # (9, H*W); zeros (no depth) sort first
    patches = torch.where(patches > 0, patches, torch.full_like(patches, float("nan")))
    median = patches.nanmedian(0).values.reshape(depth.shape)
    return (depth > 0) & ((depth - median).abs() > spread * depth)


def _refined_depth(scores: torch.Tensor, best: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Depth at the parabola's peak through the best plane's score and its two neighbours (sub-plane accuracy)."""
    planes = scores.shape[0]
    lower, upper = (best - 1).clamp(0, planes - 1), (best + 1).clamp(0, planes - 1)
    s0 = scores.gather(0, lower[None])[0]
    s1 = scores.gather(0, best[None])[0]
    s2 = scores.gather(0, upper[None])[0]
    curvature = s0 - 2 * s1 + s2
    offset = torch.where(curvature < -1e-6, 0.5 * (s0 - s2) / curvature, torch.zeros_like(s1)).clamp(-0.5, 0.5)
    step = inverse[1] - inverse[0]
    return 1.0 / (inverse[best] + offset * step)


def consistent_depth(depth: np.ndarray, K: np.ndarray, pose: np.ndarray, neighbours: list[tuple[np.ndarray, np.ndarray]],
                     tolerance: float = 0.03) -> np.ndarray:
    """`depth` (H, W) of a camera at camera-to-world `pose` kept only where a neighbouring view's depth, moved into
    this camera, agrees within `tolerance` (relative); `neighbours` are (depth, pose) pairs with the same `K` and
    size. Depth that no other view confirms is dropped (0), the geometric check of multi-view stereo fusion."""
    agreed = np.zeros(depth.shape, bool)
    for other, other_pose in neighbours:
        seen = reproject_depth(other, K, invert_pose(pose) @ other_pose)
        agreed |= (seen > 0) & (np.abs(seen - depth) <= tolerance * depth)
    return np.where(agreed & (depth > 0), depth, 0.0).astype(np.float32)
