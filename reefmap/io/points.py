"""CoralNet-style point annotations: reading them, mapping their labels to classes, the fixed validation split."""

from __future__ import annotations

import json
from pathlib import Path

from reefmap.errors import UsageError

POINT_ANNOTATIONS = "annotations.csv"
CORALNET_LABELSET = "labelset.csv"
CORALNET_LABEL_MAP = Path(__file__).resolve().parents[1] / "data" / "labelmaps" / "coralnet.json"
VALIDATION_SHARE = 0.25  # of a point-annotated folder's images, chosen by name (see `validation_images`)


def is_point_folder(path: str | Path) -> bool:
    """Point-annotated images: `annotations.csv` beside the images, or CoralNet's export layout (images/ with
    annotations/*.csv, one file per image or one for all, and optionally labelset.csv)."""
    path = Path(path)
    return (path / POINT_ANNOTATIONS).exists() or (
        (path / "images").is_dir() and (path / "annotations").is_dir() and any((path / "annotations").glob("*.csv")))


def read_label_map(path: str | Path, taxonomy) -> dict[str, int | None]:
    """JSON mapping annotation codes (e.g. CoralNet labels) to class names or ids of `taxonomy`; null marks a code
    that is not a benthic point (e.g. CoralNet's "Off"), never trained on or scored."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read label map {path} ({exc}); it must be JSON like {{\"Sand\": \"sand\"}}") from None
    by_name = {c.name: c.id for c in taxonomy.classes}
    mapping = {}
    for code, target in raw.items():
        if target is None:
            mapping[str(code)] = None
            continue
        class_id = target if isinstance(target, int) else by_name.get(str(target))
        if class_id not in set(taxonomy.ids.tolist()):
            raise UsageError(f"label map {path}: '{code}' -> '{target}' is not a class of the taxonomy {taxonomy.name}")
        mapping[str(code)] = int(class_id)
    return mapping


def coralnet_label_map(labelset_csv: str | Path, taxonomy, mapping_path: str | Path = CORALNET_LABEL_MAP) -> dict:
    """A CoralNet source's short codes -> class ids (None: not a benthic point), through reefmap's mapping of
    CoralNet's global label ids (then names, then functional groups) in `mapping_path`."""
    import csv

    mapping = json.loads(Path(mapping_path).read_text())
    by_id = {k: v["class"] for k, v in mapping["labels"].items()}
    by_name = {v["name"].lower(): v["class"] for v in mapping["labels"].values()}
    by_group = mapping["functional_groups"]
    class_ids = {c.name: c.id for c in taxonomy.classes}
    codes: dict[str, int | None] = {}
    with open(labelset_csv, newline="") as f:
        for row in csv.DictReader(f):
            label_id, name, group = row.get("Label_ID", ""), row.get("Name", ""), row.get("Functional_Group", "")
            for key, table in ((label_id, by_id), (name.lower(), by_name), (group, by_group)):
                if key in table:
                    target = table[key]
                    break
            else:
                raise UsageError(f"{labelset_csv}: CoralNet label '{name}' (id {label_id}, group '{group}') has no "
                                 f"class in {mapping_path}; add it there or pass --label-map")
            if target is not None and target not in class_ids:
                raise UsageError(f"{mapping_path}: '{name}' -> '{target}' is not a class of {taxonomy.name}")
            codes[row["Short_Code"]] = None if target is None else class_ids[target]
            codes.setdefault(name, codes[row["Short_Code"]])
    return codes


def point_label_map(folder: str | Path, taxonomy, label_map_path: str | Path | None = None) -> dict:
    """The label map for a point folder: `label_map_path` when given, else its CoralNet labelset.csv."""
    if label_map_path:
        return read_label_map(label_map_path, taxonomy)
    labelset = Path(folder) / CORALNET_LABELSET
    if labelset.exists():
        return coralnet_label_map(labelset, taxonomy)
    raise UsageError(f"{folder} holds point annotations without a CoralNet {CORALNET_LABELSET}: pass --label-map to "
                     "map their labels to classes")


def validation_images(names: list[str], share: float = VALIDATION_SHARE) -> set[str]:
    """The images of a point folder kept for validation: the `share` whose names hash lowest (SHA-1), so the
    split is fixed, needs no list, and an image added later never moves another between the sides."""
    import hashlib

    count = int(round(share * len(names))) if len(names) >= 4 else 0
    ranked = sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    return set(ranked[:count])


def read_point_annotations(folder: str | Path) -> dict[str, list[tuple[int, int, str]]]:
    """{image name: [(row, column, label code), ...]} from annotations.csv or annotations/*.csv (CoralNet export)."""
    import csv

    folder = Path(folder)
    files = [folder / POINT_ANNOTATIONS] if (folder / POINT_ANNOTATIONS).exists() else \
        sorted((folder / "annotations").glob("*.csv"))
    points: dict[str, list[tuple[int, int, str]]] = {}
    for path in files:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"Name", "Row", "Column", "Label"} - set(reader.fieldnames or [])
            if missing:
                raise UsageError(f"{path} lacks columns {sorted(missing)} (CoralNet: Name,Row,Column,Label)")
            for row in reader:
                points.setdefault(row["Name"], []).append((int(float(row["Row"])), int(float(row["Column"])),
                                                           row["Label"]))
    if not points:
        raise UsageError(f"{folder} has no point annotations")
    return points


def point_image_path(folder: Path, name: str) -> Path:
    return folder / name if (folder / name).exists() else folder / "images" / name


def read_point_image(folder: Path, name: str):
    """(H, W, 3) uint8 RGB of the photograph `name` of a point folder; a usage error when it cannot be read."""
    import cv2

    path = point_image_path(folder, name)
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise UsageError(f"image {path} named in the annotations cannot be read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
