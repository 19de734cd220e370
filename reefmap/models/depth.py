"""Depth and pose networks of the self-supervised SfM-Learner family (monodepth2 layout)."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import timm
import torch
from torch import nn

DEFAULT_DEPTH_ENCODER = "resnet18"
DEFAULT_POSE_ENCODER = "resnet18"
POSE_SCALE = 0.01


class DepthNet(nn.Module):
    """Encoder-decoder predicting disparity: (B, 3, H, W) normalised RGB -> (B, H, W) depth.

    The sigmoid output s maps to disparity min_disp + (max_disp - min_disp) * s, so depth
    stays within [min_depth, max_depth] (metres when trained with metric supervision).
    """

    def __init__(self, encoder: str = DEFAULT_DEPTH_ENCODER, min_depth: float = 0.1, max_depth: float = 30.0,
                 decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)):
        super().__init__()
        self.net = smp.Unet(encoder_name=f"tu-{encoder}", encoder_weights=None,
                            decoder_channels=tuple(decoder_channels), classes=1)
        self.min_disp = 1.0 / max_depth
        self.max_disp = 1.0 / min_depth

    def disparity(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H, W) disparity in 1/metres."""
        s = torch.sigmoid(self.net(images)[:, 0])
        return self.min_disp + (self.max_disp - self.min_disp) * s

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return 1.0 / self.disparity(images)


class PoseNet(nn.Module):
    """Relative camera motion from two frames: (B, 6, H, W) [prev, curr] -> (B, 6).

    The output is (axis-angle rotation in radians, translation) of T_prev<-curr, the transform
    taking points in the current camera's frame to the previous camera's frame.
    """

    def __init__(self, encoder: str = DEFAULT_POSE_ENCODER):
        super().__init__()
        self.encoder = timm.create_model(encoder, pretrained=False, in_chans=6, num_classes=0)
        with torch.no_grad():
            width = self.encoder.eval()(torch.zeros(1, 6, 64, 64)).shape[1]
        self.head = nn.Linear(width, 6)
        nn.init.zeros_(self.head.bias)
        nn.init.normal_(self.head.weight, std=1e-3)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return POSE_SCALE * self.head(self.encoder(pair))


class DepthPoseModel(nn.Module):
    """The depth and pose networks trained together, stored in one weights file."""

    def __init__(self, depth_encoder: str = DEFAULT_DEPTH_ENCODER, pose_encoder: str = DEFAULT_POSE_ENCODER,
                 min_depth: float = 0.1, max_depth: float = 30.0,
                 decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)):
        super().__init__()
        self.depth = DepthNet(depth_encoder, min_depth, max_depth, decoder_channels)
        self.pose = PoseNet(pose_encoder)
