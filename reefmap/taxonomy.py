"""Benthic class taxonomy: ids, names, colours and roles, loaded from JSON or YAML."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from reefmap.errors import ReefmapError

UNLABELLED = 0
KNOWN_ROLES = frozenset({"ignore_in_cover", "ignore_in_cloud", "transect_line", "transect_tools"})
_ROLE_ALIASES = {"ignore_in_point_cloud": "ignore_in_cloud"}


@dataclass(frozen=True)
class BenthicClass:
    """One class: `id` >= 1 (0 is reserved for unlabelled), RGB `colour` 0-255."""

    id: int
    name: str
    colour: tuple[int, int, int]
    roles: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Taxonomy:
    """An ordered class list; a model's output channel k predicts `classes[k]`."""

    name: str
    classes: tuple[BenthicClass, ...]

    def __post_init__(self):
        ids = [c.id for c in self.classes]
        if not ids:
            raise ReefmapError(f"taxonomy '{self.name}' has no classes: add at least one class")
        if len(set(ids)) != len(ids) or min(ids) < 1:
            raise ReefmapError(f"taxonomy '{self.name}' needs unique class ids >= 1 (0 means unlabelled)")

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def ids(self) -> np.ndarray:
        """(C,) int32 class id of each model output channel."""
        return np.array([c.id for c in self.classes], dtype=np.int32)

    def by_id(self, class_id: int) -> BenthicClass:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(class_id)

    def ids_with_role(self, role: str) -> np.ndarray:
        """(K,) int32 ids of the classes that carry `role`."""
        return np.array([c.id for c in self.classes if role in c.roles], dtype=np.int32)

    def colour_lut(self) -> np.ndarray:
        """(max_id + 1, 3) uint8 colour per class id; unlabelled (0) is black."""
        lut = np.zeros((int(self.ids.max()) + 1, 3), dtype=np.uint8)
        for c in self.classes:
            lut[c.id] = c.colour
        return lut

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "classes": [
                {"id": c.id, "name": c.name, "colour": list(c.colour), "roles": sorted(c.roles)}
                for c in self.classes
            ],
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "taxonomy") -> "Taxonomy":
        try:
            classes = tuple(
                BenthicClass(
                    id=int(c["id"]),
                    name=str(c["name"]),
                    colour=tuple(int(v) for v in c.get("colour", c.get("color"))),
                    roles=frozenset(_ROLE_ALIASES.get(r, r) for r in c.get("roles", [])),
                )
                for c in data["classes"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReefmapError(
                f"{source}: each class needs id, name and colour ({exc!r}); see reefmap/data/coralscapes.json"
            ) from None
        unknown = set().union(*(c.roles for c in classes)) - KNOWN_ROLES
        if unknown:
            raise ReefmapError(f"{source}: unknown roles {sorted(unknown)}; known roles are {sorted(KNOWN_ROLES)}")
        return cls(name=str(data.get("name", Path(source).stem)), classes=classes)


def read_data_file(path: str | Path, what: str, hint: str) -> object:
    """Parse a .json or .yaml/.yml file; unreadable or malformed files are one-line errors naming `what` and `hint`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ReefmapError(f"cannot read {what} {path}: {exc.strerror}; {hint}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:
        raise ReefmapError(f"{what} {path} is not valid {path.suffix[1:].upper() or 'JSON'}: {exc}") from None


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read a taxonomy from a .json or .yaml file with a top-level `classes` list."""
    data = read_data_file(path, "taxonomy file", "check the path")
    if not isinstance(data, dict) or "classes" not in data:
        raise ReefmapError(f"taxonomy file {path} needs a top-level 'classes' list")
    return Taxonomy.from_dict(data, source=str(path))


UNLABELLED_NAMES = frozenset({"unlabeled", "unlabelled", "background_unlabeled", "ignore", "void"})


def unlabelled_class(classes: Iterable[BenthicClass]) -> BenthicClass:
    """A model's "unlabeled" output as a class of its own: kept out of the cloud and the cover, under an id after
    the last of `classes`."""
    return BenthicClass(max(c.id for c in classes) + 1, "unlabeled", (0, 0, 0),
                        frozenset({"ignore_in_cover", "ignore_in_cloud"}))


def _name_key(name: str) -> str:
    return " ".join(re.split(r"[\s_\-]+", name.strip().lower()))


def taxonomy_for_labels(labels: Sequence[str], reference: Taxonomy, source: str) -> Taxonomy:
    """The taxonomy of a model whose output channel k is named `labels[k]`: each name matched to a `reference` class
    by name (case, spaces, "_" and "-" ignored), "unlabeled" to a class kept out of the map; a name that matches
    nothing is an error that lists them all."""
    by_name = {_name_key(c.name): c for c in reference.classes}
    unknown = [name for name in labels if _name_key(name) not in by_name and _name_key(name) not in UNLABELLED_NAMES]
    if unknown:
        raise ReefmapError(f"{source}: {len(unknown)} output labels match no class of '{reference.name}' "
                           f"({', '.join(map(repr, unknown[:8]))}); only models with Coralscapes class names can be "
                           "used, or map their labels onto these classes first")
    unlabelled = unlabelled_class(reference.classes)
    classes = tuple(by_name.get(_name_key(name), unlabelled) for name in labels)
    if len({c.id for c in classes}) != len(classes):
        raise ReefmapError(f"{source}: two output labels name the same class; each class may appear once")
    return Taxonomy(reference.name, classes)


def default_taxonomy() -> Taxonomy:
    """The 39 Coralscapes classes shipped with reefmap."""
    with resources.as_file(resources.files("reefmap") / "data" / "coralscapes.json") as path:
        return load_taxonomy(path)
