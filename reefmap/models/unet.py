"""U-Net segmentation network on any timm encoder, assembled by name."""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import nn

DEFAULT_ENCODER = "resnext50_32x4d"
DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)


def build_unet(
    encoder: str = DEFAULT_ENCODER,
    num_classes: int = 39,
    decoder_channels: tuple[int, ...] = DEFAULT_DECODER_CHANNELS,
) -> nn.Module:
    """A randomly initialised U-Net: (B, 3, H, W) normalised RGB -> (B, num_classes, H, W) logits.

    H and W must be multiples of 32. `encoder` is any timm model name with `features_only` support.
    """
    return smp.Unet(
        encoder_name=f"tu-{encoder}",
        encoder_weights=None,
        decoder_channels=tuple(decoder_channels),
        classes=num_classes,
    )
