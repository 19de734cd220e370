"""Import the reference system's published 2024 segmentation checkpoint (a plain state dict of an smp DeepLabV3+
on ResNeXt-50 32x4d, inputs normalised with mean 0.45 / std 0.225) into reefmap's weights format.

The file is read with torch's weights-only loader: a checkpoint that needs code to load is refused, never run."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from reefmap.errors import WeightsError
from reefmap.models.weights import (
    build_model, load_state, save_weights, sha256_file, state_mismatch, user_weights_dir,
)
from reefmap.taxonomy import Taxonomy, load_taxonomy, unlabelled_class

ENCODER = "resnext50_32x4d"
NORMALISATION = {"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]}
DEFAULT_NAME = "deepreefmap_2024_segmentation.safetensors"
PREFIXES = ("module.", "model.")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors (a plain state dict, or one under 'state_dict' / 'model'), read without code."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint not found: {path}; check the path") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise WeightsError(f"{path} cannot be read as plain tensors ({reason}); reefmap loads weights without running "
                           "any code they carry, so only a plain state dict can be imported") from None
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path} is not a state dict of tensors; export the model with torch.save(model.state_dict())")
    state = {}
    for key, value in loaded.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        state[key] = value
    return state


def output_taxonomy(classes: Taxonomy, outputs: int) -> Taxonomy:
    """The model's channel-by-channel taxonomy: with one output more than `classes`, output 0 is 'unlabeled'
    (kept out of the cloud and the cover, under an id after the last class); with as many, the classes in order."""
    ordered = sorted(classes.classes, key=lambda c: c.id)
    if outputs == len(ordered) + 1:
        return Taxonomy(f"{classes.name} + unlabeled", (unlabelled_class(ordered), *ordered))
    if outputs == len(ordered):
        return Taxonomy(classes.name, tuple(ordered))
    raise WeightsError(f"the checkpoint has {outputs} outputs but the class list has {len(ordered)} classes; give the "
                       f"list the model was trained with ({outputs - 1} classes + unlabeled, or {outputs})")


def import_deepreefmap(checkpoint: str | Path, classes: str | Path, out: str | Path | None = None,
                       input_size: tuple[int, int] = (640, 384)) -> Path:
    """Convert `checkpoint` with the class list `classes` (reefmap/DeepReefMap class YAML or JSON) into fp16
    safetensors + card at `out` (default: the user's weights folder); the written path."""
    checkpoint = Path(checkpoint)
    state = read_state_dict(checkpoint)
    head = state.get("segmentation_head.0.weight")
    if head is None or head.ndim != 4:
        raise WeightsError(f"{checkpoint} has no smp segmentation head (segmentation_head.0.weight); it is not the "
                           "DeepReefMap 2024 DeepLabV3+ checkpoint")
    taxonomy = output_taxonomy(load_taxonomy(classes), int(head.shape[0]))
    card = {
        "task": "segmentation", "architecture": "deeplabv3plus", "encoder": ENCODER, "decoder_channels": [256],
        "input_size": list(input_size), "normalisation": NORMALISATION, "taxonomy": taxonomy.to_dict(),
        "training": {"kind": "imported: DeepReefMap 2024 segmentation (Sauder et al. 2024), trained on reef video",
                     "source_file": checkpoint.name, "source_sha256": sha256_file(checkpoint),
                     "note": "input size chosen at import; the reference system ran it at 1280x768"},
        "metrics": {},
    }
    model = build_model(card)
    mismatch = state_mismatch(model, state)
    if mismatch:
        raise WeightsError(f"{checkpoint} does not match an smp DeepLabV3+ on {ENCODER}: {mismatch}")
    load_state(model, state)
    target = Path(out) if out else user_weights_dir() / DEFAULT_NAME
    return save_weights(model, card, target)
