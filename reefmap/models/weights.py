"""One weights format for every model: fp16 safetensors plus a JSON card that rebuilds the network."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from reefmap.errors import WeightsError
from reefmap.io.files import atomic_path, write_text_atomic
from reefmap.taxonomy import Taxonomy

FORMAT = "reefmap-weights/1"
TASKS = ("segmentation", "depth_pose")
DEFAULT_FILES = {"segmentation": "segmentation.safetensors", "depth_pose": "depth_pose.safetensors"}
OPTION_FOR_TASK = {"segmentation": "--seg-weights", "depth_pose": "--depth-weights"}


@dataclass(frozen=True)
class LoadedWeights:
    """A network ready for inference, with the card it was built from."""

    model: nn.Module
    card: dict
    path: Path
    sha256: str

    @property
    def taxonomy(self) -> Taxonomy:
        return Taxonomy.from_dict(self.card["taxonomy"], source=f"card of {self.path}")


def card_path(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_home_weights() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "reefmap" / "weights"


def user_weights_dir() -> Path:
    """Where `reefmap weights install` puts files: $REEFMAP_WEIGHTS, else ~/.local/share/reefmap/weights."""
    return Path(os.environ["REEFMAP_WEIGHTS"]) if os.environ.get("REEFMAP_WEIGHTS") else _data_home_weights()


def weights_dirs() -> list[Path]:
    """Folders searched for default weights, first match wins: $REEFMAP_WEIGHTS, the user's, the repository's."""
    dirs = [user_weights_dir(), _data_home_weights(), Path(__file__).resolve().parents[2] / "weights"]
    return list(dict.fromkeys(dirs))


def default_weights(task: str) -> Path:
    """The default weights file for `task`, or a WeightsError saying where to put one."""
    for folder in weights_dirs():
        candidate = folder / DEFAULT_FILES[task]
        if candidate.exists():
            return candidate
    raise WeightsError(
        f"no {task} weights installed (looked for {DEFAULT_FILES[task]} in {', '.join(map(str, weights_dirs()))}); "
        f"pass {OPTION_FOR_TASK[task]} PATH or copy a trained .safetensors and its .json card into one of those folders"
    )


def build_model(card: dict) -> nn.Module:
    """The untrained network a card describes."""
    from reefmap.models.depth import DepthPoseModel
    from reefmap.models.unet import build_unet

    if card["task"] == "segmentation" and card.get("architecture") == "segformer":
        from reefmap.models.segformer import build_segformer

        return build_segformer(card)
    if card["task"] == "segmentation" and card.get("architecture") == "deeplabv3plus":
        import segmentation_models_pytorch as smp

        return smp.DeepLabV3Plus(encoder_name=card["encoder"], encoder_weights=None,
                                 classes=len(card["taxonomy"]["classes"]))
    if card["task"] == "segmentation":
        return build_unet(card["encoder"], len(card["taxonomy"]["classes"]), tuple(card["decoder_channels"]))
    return DepthPoseModel(
        card["depth_encoder"], card["pose_encoder"], card["min_depth"], card["max_depth"],
        tuple(card["decoder_channels"]),
    )


def save_weights(model: nn.Module, card: dict, path: str | Path) -> Path:
    """Write `model` as fp16 safetensors at `path` and `card` beside it; both atomically."""
    path = Path(path).with_suffix(".safetensors")
    card = {"format": FORMAT, **card}
    tensors = {
        name: (t.detach().to("cpu", torch.float16) if t.is_floating_point() else t.detach().cpu()).contiguous()
        for name, t in model.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        save_file(tensors, str(partial), metadata={"format": FORMAT, "task": card["task"]})
    card["sha256"] = sha256_file(path)
    write_text_atomic(card_path(path), json.dumps(card, indent=1) + "\n")
    return path


def read_card(path: Path, task: str) -> dict:
    """Read and check the card beside `path` for `task`."""
    option = OPTION_FOR_TASK[task]
    cpath = card_path(path)
    if not cpath.exists():
        raise WeightsError(f"{path} has no card {cpath.name} beside it; keep the .json that came with the weights")
    try:
        card = json.loads(cpath.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"card {cpath} is not readable JSON ({exc}); restore it from where the weights came from") from None
    if card.get("format") != FORMAT or card.get("task") not in TASKS:
        raise WeightsError(f"card {cpath} is not a reefmap weights card (format {FORMAT}); convert the weights first")
    if card["task"] != task:
        other = OPTION_FOR_TASK[card["task"]]
        raise WeightsError(f"{path} holds {card['task']} weights, not {task}; pass it as {other} instead of {option}")
    return card


def load_weights(path: str | Path, task: str, device: torch.device | str = "cpu") -> LoadedWeights:
    """Build the network from its card and load the tensors; every failure names the file and why."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file not found: {path}; check {OPTION_FOR_TASK[task]}")
    card = read_card(path, task)
    digest = sha256_file(path)
    if card.get("sha256") not in (None, digest):
        raise WeightsError(f"{path} does not match the SHA-256 in its card: the file is damaged or not the one the card "
                           "describes; re-download or re-train it")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc}); re-download or re-train it") from None
    try:
        model = build_model(card)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"card {card_path(path)} does not describe a buildable network ({exc!r})") from None
    mismatch = state_mismatch(model, state)
    if mismatch:
        raise WeightsError(f"{path} does not match the architecture in its card ({_describe(card)}): {mismatch}; use "
                           "the card that came with it")
    load_state(model, state)
    model.eval().to(device)
    return LoadedWeights(model=model, card=card, path=path, sha256=digest)


def state_mismatch(model: nn.Module, state: dict) -> str | None:
    """How the tensors `state` fail to fit `model` ("N tensors missing, ... (e.g. name)"), or None when they fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if not (missing or unexpected or wrong_shape):
        return None
    return (f"{len(missing)} tensors missing, {len(unexpected)} unexpected, {len(wrong_shape)} of the wrong shape "
            f"(e.g. {(missing or unexpected or wrong_shape)[0]})")


def load_state(model: nn.Module, state: dict) -> None:
    """Load fitting tensors into `model`, each cast to the dtype the model holds it in."""
    expected = model.state_dict()
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


def _describe(card: dict) -> str:
    if card["task"] == "segmentation":
        return f"{card.get('architecture', 'unet')} on {card.get('encoder')}, {len(card.get('taxonomy', {}).get('classes', []))} classes"
    return f"depth {card.get('depth_encoder')}, pose {card.get('pose_encoder')}"


IMAGENET_NORMALISATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
# Each frame's colour channels standardised by their own mean and spread: water tints (a gain per channel), haze (an
# offset per channel) and exposure cancel out, so classes told apart by colour keep their colour under any water.
PER_IMAGE_NORMALISATION = {"per_image": True}
MIN_CHANNEL_STD = 0.02  # of full scale: a nearly flat channel is not stretched into noise


def normalise_batch(x: torch.Tensor, normalisation: dict) -> torch.Tensor:
    """(B, 3, H, W) RGB in 0..1 -> the network input a card's `normalisation` prescribes (fixed or per image)."""
    if normalisation.get("per_image"):
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True).clamp_min(MIN_CHANNEL_STD)
        return (x - mean) / std
    mean = torch.tensor(normalisation["mean"], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(normalisation["std"], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def segmentation_card(encoder: str, taxonomy: Taxonomy, input_size: tuple[int, int],
                      decoder_channels: tuple[int, ...], training: dict, metrics: dict | None = None,
                      normalisation: dict = IMAGENET_NORMALISATION, calibration: dict | None = None) -> dict:
    """Card for a U-Net segmenter; `input_size` (w, h) is the size it was trained at; `calibration` holds the
    temperature its logits are divided by before the softmax (see train/segmentation.py `fit_temperature`)."""
    return {
        "task": "segmentation",
        "architecture": "unet",
        "encoder": encoder,
        "decoder_channels": list(decoder_channels),
        "input_size": list(input_size),
        "normalisation": normalisation,
        "taxonomy": taxonomy.to_dict(),
        "training": training,
        "metrics": metrics or {},
        "calibration": calibration or {"temperature": 1.0},
    }


def depth_pose_card(depth_encoder: str, pose_encoder: str, input_size: tuple[int, int],
                    decoder_channels: tuple[int, ...], training: dict, min_depth: float = 0.1,
                    max_depth: float = 30.0, metrics: dict | None = None, depth_units: str = "relative") -> dict:
    """Card for the depth + pose pair; `depth_units` is "metres" when training had metric supervision."""
    return {
        "task": "depth_pose",
        "architecture": "monodepth_unet+posenet",
        "depth_encoder": depth_encoder,
        "pose_encoder": pose_encoder,
        "decoder_channels": list(decoder_channels),
        "input_size": list(input_size),
        "min_depth": min_depth,
        "max_depth": max_depth,
        "depth_units": depth_units,
        "normalisation": IMAGENET_NORMALISATION,
        "training": training,
        "metrics": metrics or {},
    }
