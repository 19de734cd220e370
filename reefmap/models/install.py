"""`reefmap weights list|show|install`: what is installed, and adding weights from a file or a URL."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reefmap.errors import WeightsError
from reefmap.io.files import atomic_path
from reefmap.models.weights import DEFAULT_FILES, TASKS, card_path, load_weights, user_weights_dir, weights_dirs

DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class InstalledWeights:
    path: Path
    card: dict
    is_default: bool


def installed_weights() -> list[InstalledWeights]:
    """Every weights file with a card in the search folders; `is_default` marks the one each task uses."""
    found, defaults = [], {}
    for folder in weights_dirs():
        for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
            try:
                card = json.loads(card_path(path).read_text())
            except (OSError, ValueError):
                continue
            task = card.get("task")
            is_default = path.name == DEFAULT_FILES.get(task) and task not in defaults
            if is_default:
                defaults[task] = path
            found.append(InstalledWeights(path, card, is_default))
    return found


def _fetch(source: str, target: Path) -> str:
    """Copy a local path or download an http(s)/file URL to `target`; returns the SHA-256 of the bytes."""
    digest = hashlib.sha256()
    try:
        if "://" in source:
            stream = urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT_S)
        else:
            stream = open(source, "rb")
        with stream as src, open(target, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot fetch {source}: {getattr(exc, 'reason', None) or exc}; check the path or URL") from None
    return digest.hexdigest()


def _card_source(source: str) -> str:
    stem, dot, _ = source.rpartition(".")
    return f"{stem}.json" if dot else f"{source}.json"


def install_weights(source: str, sha256: str | None = None, name: str | None = None) -> Path:
    """Fetch weights and their card, verify the hash and that they load, then move them into the user's folder.

    Without `name` the file takes its task's default name, so `reefmap process` uses it from then on.
    """
    with tempfile.TemporaryDirectory() as tmp:
        weights, card = Path(tmp) / "w.safetensors", Path(tmp) / "w.json"
        digest = _fetch(source, weights)
        if sha256 and digest != sha256.lower():
            raise WeightsError(f"SHA-256 of {source} is {digest}, not the expected {sha256}; the download is damaged or "
                               "not the file you meant")
        _fetch(_card_source(source), card)
        try:
            task = json.loads(card.read_text())["task"]
        except (ValueError, KeyError) as exc:
            raise WeightsError(f"the card of {source} is not a reefmap weights card ({exc!r})") from None
        if task not in TASKS:
            raise WeightsError(f"the card of {source} names an unknown task '{task}'; expected one of {TASKS}")
        load_weights(weights, task)
        folder = user_weights_dir()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (f"{Path(name).stem}.safetensors" if name else DEFAULT_FILES[task])
        with atomic_path(target) as partial_weights, atomic_path(card_path(target)) as partial_card:
            shutil.copyfile(weights, partial_weights)
            shutil.copyfile(card, partial_card)
    return target
