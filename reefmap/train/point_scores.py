"""Scores of a segmentation network at expert point labels: per class, by benthic group, and cover at the points."""

from __future__ import annotations

import numpy as np

from reefmap.report.groups import default_groups
from reefmap.taxonomy import Taxonomy

BENTHIC_GROUPS = ("live hard coral", "sand", "other hard bottom")
LIVE_CORAL_GROUP = "hard coral alive"  # the group of reefmap/data/groups.json that counts as live hard coral


def benthic_group_index(taxonomy: Taxonomy) -> np.ndarray:
    """(C,) group index per class index: 0 live hard coral, 1 sand, 2 anything else (what a point may fall on)."""
    groups = default_groups()
    live = set(groups.members[groups.names.index(LIVE_CORAL_GROUP)])
    return np.array([0 if c.name in live else 1 if c.name == "sand" else 2 for c in taxonomy.classes], np.int64)


def point_scores(truth: np.ndarray, predicted: np.ndarray, image: np.ndarray, taxonomy: Taxonomy) -> dict:
    """Scores for N points: (N,) true and predicted class indices of `taxonomy`, (N,) image index of each point.

    Returns point accuracy, accuracy by true class, grouped accuracy (BENTHIC_GROUPS), and per image the cover of
    live hard coral at the points, true and predicted, with its mean absolute error in percentage points.
    """
    group = benthic_group_index(taxonomy)
    by_class = {}
    for k in np.unique(truth):
        here = truth == k
        by_class[taxonomy.classes[int(k)].name] = {"points": int(here.sum()),
                                                   "accuracy": float((predicted[here] == k).mean())}
    confusion = np.zeros((len(BENTHIC_GROUPS), len(BENTHIC_GROUPS)), np.int64)
    np.add.at(confusion, (group[truth], group[predicted]), 1)
    per_image = []
    for i in np.unique(image):
        here = image == i
        true_live = 100.0 * float((group[truth[here]] == 0).mean())
        predicted_live = 100.0 * float((group[predicted[here]] == 0).mean())
        per_image.append({"image": int(i), "points": int(here.sum()), "live_coral_true_percent": true_live,
                          "live_coral_predicted_percent": predicted_live})
    errors = [abs(r["live_coral_true_percent"] - r["live_coral_predicted_percent"]) for r in per_image]
    return {
        "points": int(len(truth)),
        "point_accuracy": float((truth == predicted).mean()) if len(truth) else 0.0,
        "grouped_point_accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "group_confusion": {"groups": list(BENTHIC_GROUPS), "rows_true_columns_predicted": confusion.tolist()},
        "accuracy_by_class": by_class,
        "live_coral_cover_error_points": float(np.mean(errors)) if errors else 0.0,
        "per_image": per_image,
    }
