"""Install SegFormer segmentation networks from the Hugging Face hub (`hf:OWNER/NAME[@REVISION]`) or from a local
snapshot folder: fetched through `huggingface_hub` (its cache and offline mode apply), class names matched to
reefmap's, converted into fp16 safetensors with a card, then installed like any other weights."""

from __future__ import annotations

import json
import socket
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from reefmap.errors import UsageError, WeightsError
from reefmap.models.segformer import (
    DEFAULT_INPUT_WIDTH, DEFAULT_STRIDE, DEFAULT_WINDOW, INSTALL_HINT, build_segformer, output_labels,
    segformer_config, transformers_module,
)
from reefmap.models.weights import IMAGENET_NORMALISATION, save_weights, sha256_file
from reefmap.taxonomy import default_taxonomy, taxonomy_for_labels

HUB_PREFIX = "hf:"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
OPTIONAL_FILES = ("preprocessor_config.json", "README.md")
CONNECT_TIMEOUT_S = 3.0  # an endpoint that does not answer within this is taken as offline (the cache is used)


@dataclass(frozen=True)
class Snapshot:
    """The files of one model revision on local disk."""

    source: str  # what the user named: hf:OWNER/NAME or a folder
    files: dict[str, Path]  # file name -> local path (config.json and one weights file at least)
    revision: str | None  # the commit the hub resolved, None for a folder


def is_hub_source(source: str) -> bool:
    """Whether `reefmap weights install SOURCE` means a SegFormer: `hf:...` or a folder holding a config.json."""
    return source.startswith(HUB_PREFIX) or (Path(source).is_dir() and (Path(source) / "config.json").exists())


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise WeightsError(f"installing from the Hugging Face hub needs huggingface_hub; install it with {INSTALL_HINT}"
                           ) from None
    return huggingface_hub


def _download(repo_id: str, filename: str, revision: str | None, required: bool = True) -> Path | None:
    """One file of the repository through the hub's cache; None when the repository does not have it (or, for a
    file not `required`, when offline and it is not in the cache)."""
    hub = _hub()
    from huggingface_hub import errors

    verbosity = hub.logging.get_verbosity()
    hub.logging.set_verbosity_error()  # its retry notices; the outcome is reported below
    try:
        offline = hub.constants.HF_HUB_OFFLINE or not endpoint_reachable(hub.constants.ENDPOINT)
        return Path(hub.hf_hub_download(repo_id, filename, revision=revision, local_files_only=offline))
    except errors.LocalEntryNotFoundError:
        if not required:
            return None
        raise WeightsError(f"cannot reach the Hugging Face hub and {repo_id} is not in its cache "
                           f"({hub.constants.HF_HUB_CACHE}); connect to the internet once, or install from a local "
                           "snapshot folder") from None
    except errors.GatedRepoError:
        raise WeightsError(f"{repo_id} is gated on the hub: accept its terms on huggingface.co and log in with "
                           "`hf auth login`, then install again") from None
    except errors.RepositoryNotFoundError:
        raise WeightsError(f"no model {repo_id} on the Hugging Face hub (or it is private); check the id, e.g. "
                           "hf:EPFL-ECEO/segformer-b2-finetuned-coralscapes-1024-1024") from None
    except errors.RevisionNotFoundError:
        raise WeightsError(f"{repo_id} has no revision {revision}; give a branch, tag or commit it has") from None
    except (errors.EntryNotFoundError, errors.RemoteEntryNotFoundError):
        return None
    except (errors.HfHubHTTPError, OSError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise WeightsError(f"cannot download {filename} of {repo_id} from the Hugging Face hub ({reason}); "
                           "try again, or install from a local snapshot folder") from None
    finally:
        hub.logging.set_verbosity(verbosity)


@lru_cache(maxsize=8)
def endpoint_reachable(url: str) -> bool:
    """Whether the hub's host takes a connection within `CONNECT_TIMEOUT_S`: without one, huggingface_hub would retry
    with growing pauses for half a minute before saying it is offline."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def fetch_snapshot(source: str) -> Snapshot:
    """The model files that `source` names, downloaded (or taken from the cache or the folder)."""
    if not source.startswith(HUB_PREFIX):
        folder = Path(source)
        files = {name: folder / name for name in ("config.json", *WEIGHT_FILES, *OPTIONAL_FILES)
                 if (folder / name).is_file()}
        if not any(name in files for name in WEIGHT_FILES):
            raise WeightsError(f"{folder} has a config.json but no {' or '.join(WEIGHT_FILES)}; copy the whole "
                               "model snapshot")
        return Snapshot(source, files, None)
    repo_id, _, revision = source[len(HUB_PREFIX):].partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise WeightsError(f"'{source}' is not a hub model id; write hf:OWNER/NAME, optionally @REVISION")
    config = _download(repo_id, "config.json", revision or None)
    if config is None:
        raise WeightsError(f"{repo_id} on the hub has no config.json; it is not a transformers model")
    files = {"config.json": config}
    for name in WEIGHT_FILES:
        path = _download(repo_id, name, revision or None, required=False)
        if path is not None:
            files[name] = path
            break
    else:
        raise WeightsError(f"{repo_id} has neither {' nor '.join(WEIGHT_FILES)} on the hub or in its cache; it cannot "
                           "be installed")
    for name in OPTIONAL_FILES:
        path = _download(repo_id, name, revision or None, required=False)
        if path is not None:
            files[name] = path
    return Snapshot(source, files, config.parent.name)


def load_network(snapshot: Snapshot):
    """The snapshot's network as transformers loads it (which renames the keys of older checkpoints); weights that
    do not fit the configuration are an error, not a silently half-initialised model."""
    transformers = transformers_module()
    folder = snapshot.files["config.json"].parent
    verbosity, progress = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        network, info = transformers.SegformerForSemanticSegmentation.from_pretrained(
            folder, local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise WeightsError(f"the weights of {snapshot.source} cannot be loaded ({reason}); delete them from the hub "
                           "cache or the folder and install again") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
        if progress:
            transformers.logging.enable_progress_bar()
    problems = {kind: keys for kind in ("missing_keys", "unexpected_keys", "mismatched_keys") if (keys := info.get(kind))}
    if problems:
        kind, keys = next(iter(problems.items()))
        raise WeightsError(f"the weights of {snapshot.source} do not fit the SegFormer its config.json describes "
                           f"({len(keys)} {kind.replace('_', ' ')}, e.g. {sorted(map(str, keys))[0]})")
    return network


def licence(readme: Path | None) -> str:
    """The licence the model card's metadata states, or a note that it states none."""
    if readme is None:
        return "not stated (no model card)"
    from huggingface_hub.repocard import metadata_load

    try:
        metadata = metadata_load(readme) or {}
    except Exception:
        return "not stated (model card metadata unreadable)"
    name = metadata.get("license")
    if name == "other" and metadata.get("license_name"):
        name = f"other: {metadata['license_name']}"
    return str(name) if name else "not stated in the model card"


def normalisation(snapshot: Snapshot) -> dict:
    """Mean and std from the model's preprocessor config, ImageNet's where it has none."""
    path = snapshot.files.get("preprocessor_config.json")
    if path is None:
        return IMAGENET_NORMALISATION
    try:
        config = json.loads(path.read_text())
        return {"mean": [float(v) for v in config["image_mean"]], "std": [float(v) for v in config["image_std"]]}
    except (OSError, ValueError, KeyError, TypeError):
        return IMAGENET_NORMALISATION


def convert_snapshot(snapshot: Snapshot, out: Path, input_width: int = DEFAULT_INPUT_WIDTH,
                     window: tuple[int, int] = DEFAULT_WINDOW, stride: tuple[int, int] = DEFAULT_STRIDE) -> Path:
    """Write the snapshot's SegFormer as reefmap weights + card at `out`."""
    sizes = (*window, *stride, input_width)
    if any(v < 32 or v % 32 for v in sizes) or any(s > w for s, w in zip(stride, window)):
        raise UsageError(f"--window {window[0]}x{window[1]}, --stride {stride[0]}x{stride[1]} and --input-width "
                         f"{input_width} must be multiples of 32 pixels, the stride no larger than the window")
    try:
        config = json.loads(snapshot.files["config.json"].read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"config.json of {snapshot.source} is not readable JSON ({exc})") from None
    labels = output_labels(config)
    taxonomy = taxonomy_for_labels(labels, default_taxonomy(), f"model {snapshot.source}")
    card = {
        "task": "segmentation",
        "architecture": "segformer",
        "encoder": f"segformer ({config.get('_name_or_path') or snapshot.source})",
        "segformer_config": segformer_config(config),
        "decoder_channels": [int(config["decoder_hidden_size"])],
        "input_size": [int(input_width), int(input_width) // 2],
        "sliding_window": {"window": list(window), "stride": list(stride)},
        "normalisation": normalisation(snapshot),
        "taxonomy": taxonomy.to_dict(),
        "class_mapping": {label: cls.name for label, cls in zip(labels, taxonomy.classes)},
        "source": {
            "model": snapshot.source,
            "revision": snapshot.revision,
            "licence": licence(snapshot.files.get("README.md")),
            "files": {name: sha256_file(path) for name, path in sorted(snapshot.files.items())},
        },
        "training": {"kind": f"imported: {snapshot.source} (see its model card for data and figures)"},
        "metrics": {},
        "calibration": {"temperature": 1.0, "note": "not calibrated by reefmap"},
    }
    model = build_segformer(card)
    model.network.load_state_dict(load_network(snapshot).state_dict())
    return save_weights(model, card, out)


def install_segformer(source: str, name: str | None = None, input_width: int = DEFAULT_INPUT_WIDTH,
                      window: tuple[int, int] = DEFAULT_WINDOW, stride: tuple[int, int] = DEFAULT_STRIDE) -> Path:
    """Fetch, convert and install a SegFormer; without `name` it becomes the default segmentation."""
    from reefmap.models.install import install_weights

    snapshot = fetch_snapshot(source)
    with tempfile.TemporaryDirectory() as tmp:
        converted = convert_snapshot(snapshot, Path(tmp) / "segformer.safetensors", input_width, window, stride)
        return install_weights(str(converted), name=name)
