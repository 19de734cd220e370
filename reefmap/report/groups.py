"""Class groups (hard coral alive/bleached/dead, algae, substrate, ...) for summary cover, as a taxonomy of groups."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from reefmap.errors import ReefmapError
from reefmap.taxonomy import BenthicClass, Taxonomy, read_data_file

OTHER = "other"
EXCLUDED = "excluded"


@dataclass(frozen=True)
class ClassGroups:
    """Named groups of class names with a display colour each, in report order."""

    names: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]
    members: tuple[tuple[str, ...], ...]
    source: str

    def grouping(self, taxonomy: Taxonomy) -> tuple[Taxonomy, np.ndarray]:
        """A taxonomy whose classes are the groups, and a (max_id + 1,) lookup from class id to group id.

        Classes of no group join 'other'; classes excluded from cover join an 'excluded' group that is excluded too.
        """
        names, colours = list(self.names), list(self.colours)
        group_of = {name: k for k, group in enumerate(self.members) for name in group}
        if OTHER not in names:
            names.append(OTHER)
            colours.append((160, 160, 160))
        names.append(EXCLUDED)
        colours.append((0, 0, 0))
        excluded = set(taxonomy.ids_with_role("ignore_in_cover").tolist())
        lut = np.zeros(int(taxonomy.ids.max()) + 1, dtype=np.int32)
        for c in taxonomy.classes:
            k = len(names) - 1 if c.id in excluded else group_of.get(c.name, names.index(OTHER))
            lut[c.id] = k + 1
        groups = tuple(BenthicClass(k + 1, name, colour, frozenset({"ignore_in_cover"}) if name == EXCLUDED else frozenset())
                       for k, (name, colour) in enumerate(zip(names, colours)))
        return Taxonomy(f"groups of {taxonomy.name}", groups), lut


def load_groups(path: str | Path) -> ClassGroups:
    """Read a groups file: {"groups": [{"name", "classes": [class names], "colour"?}, ...]} in JSON or YAML."""
    data = read_data_file(path, "groups file", "check the --groups path")
    try:
        groups = data["groups"]
        names = tuple(str(g["name"]) for g in groups)
        members = tuple(tuple(str(n) for n in g["classes"]) for g in groups)
        colours = tuple(tuple(int(v) for v in g.get("colour", (160, 160, 160))) for g in groups)
    except Exception as exc:
        raise ReefmapError(f"groups file {path} needs a 'groups' list of {{name, classes}} entries ({exc!r}); "
                           "see reefmap/data/groups.json") from None
    named = [n for group in members for n in group]
    if len(set(names)) != len(names) or len(set(named)) != len(named) or EXCLUDED in names:
        raise ReefmapError(f"groups file {path}: group names must be unique (not '{EXCLUDED}') and each class in one group")
    return ClassGroups(names, colours, members, str(path))


def check_groups(groups: ClassGroups, taxonomy: Taxonomy) -> None:
    """Refuse class names in a groups file that the taxonomy does not have (a typo would silently fall in 'other')."""
    unknown = sorted({n for group in groups.members for n in group} - {c.name for c in taxonomy.classes})
    if unknown:
        raise ReefmapError(f"groups file {groups.source} names classes the model does not have: {unknown}; "
                           f"use names from the taxonomy ({taxonomy.name})")


def default_groups() -> ClassGroups:
    """The shipped groups of the Coralscapes classes."""
    with resources.as_file(resources.files("reefmap") / "data" / "groups.json") as path:
        groups = load_groups(path)
    return ClassGroups(groups.names, groups.colours, groups.members, "reefmap/data/groups.json")
