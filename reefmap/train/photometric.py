"""Self-supervised view synthesis losses (monodepth2 family), as batched torch functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def axis_angle_to_matrix(vec: torch.Tensor) -> torch.Tensor:
    """(B, 6) [axis-angle (rad), translation] -> (B, 4, 4) rigid transforms (Rodrigues)."""
    rot, trans = vec[:, :3], vec[:, 3:]
    angle = rot.norm(dim=1, keepdim=True).clamp_min(1e-8)
    k = rot / angle
    zero = torch.zeros_like(k[:, 0])
    kx = torch.stack([zero, -k[:, 2], k[:, 1], k[:, 2], zero, -k[:, 0], -k[:, 1], k[:, 0], zero], 1).view(-1, 3, 3)
    eye = torch.eye(3, device=vec.device, dtype=vec.dtype).expand_as(kx)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    R = eye + s * kx + (1 - c) * (kx @ kx)
    T = torch.eye(4, device=vec.device, dtype=vec.dtype).repeat(len(vec), 1, 1)
    T[:, :3, :3] = R
    T[:, :3, 3] = trans
    return T


def warp(source: torch.Tensor, depth: torch.Tensor, T_source_target: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Resample `source` (B, 3, H, W) into the target view from target `depth` (B, H, W) and the motion
    T_source<-target (B, 4, 4); K (3, 3) in pixels of this size."""
    b, _, h, w = source.shape
    v, u = torch.meshgrid(torch.arange(h, device=depth.device, dtype=depth.dtype),
                          torch.arange(w, device=depth.device, dtype=depth.dtype), indexing="ij")
    rays = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], 0).view(1, 3, -1)
    points = rays * depth.view(b, 1, -1)
    moved = T_source_target[:, :3, :3] @ points + T_source_target[:, :3, 3:]
    z = moved[:, 2].clamp_min(1e-3)
    px = moved[:, 0] / z * K[0, 0] + K[0, 2]
    py = moved[:, 1] / z * K[1, 1] + K[1, 2]
    grid = torch.stack([2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1], -1).view(b, h, w, 2)
    return F.grid_sample(source, grid, padding_mode="border", align_corners=True)


def ssim_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1 - SSIM) / 2 per pixel over 3x3 windows, (B, 3, H, W)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x ** 2
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y ** 2
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sigma_x + sigma_y + c2))
    return ((1 - ssim) / 2).clamp(0, 1)


def photometric_error(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0.85 SSIM + 0.15 L1 per pixel, (B, H, W), on images in [0, 1]."""
    return 0.85 * ssim_distance(predicted, target).mean(1) + 0.15 * (predicted - target).abs().mean(1)


def smoothness(disparity: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of mean-normalised disparity (B, H, W) guided by `image` (B, 3, H, W)."""
    d = disparity / disparity.mean(dim=(1, 2), keepdim=True).clamp_min(1e-7)
    dx, dy = (d[:, :, 1:] - d[:, :, :-1]).abs(), (d[:, 1:] - d[:, :-1]).abs()
    ix = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean(1)
    iy = (image[:, :, 1:] - image[:, :, :-1]).abs().mean(1)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


def view_synthesis_loss(target: torch.Tensor, sources: list[torch.Tensor], depth: torch.Tensor,
                        motions: list[torch.Tensor], K: torch.Tensor) -> torch.Tensor:
    """Per-pixel minimum reprojection error over the sources, with auto-masking of pixels that a
    static source already explains (camera not moving, textureless water); images in [0, 1]."""
    warped = torch.stack([photometric_error(warp(s, depth, T, K), target) for s, T in zip(sources, motions)])
    identity = torch.stack([photometric_error(s, target) for s in sources])
    identity = identity + 1e-5 * torch.randn_like(identity)
    best_warp, best_identity = warped.min(0).values, identity.min(0).values
    keep = (best_warp < best_identity).float()
    return (best_warp * keep).sum() / keep.sum().clamp_min(1.0)
