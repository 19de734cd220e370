"""Two surveys of one transect: cover change per class and group, with its 95 % interval and whether it is real."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from reefmap.errors import UsageError
from reefmap.io.files import atomic_path
from reefmap.report.uncertainty import Z95

CHANGE_COLUMNS = ("level", "name", "before_percent", "before_ci_low", "before_ci_high", "after_percent",
                  "after_ci_low", "after_ci_high", "change_pts", "change_ci_low", "change_ci_high",
                  "exceeds_uncertainty", "before_area_percent", "after_area_percent")


@dataclass(frozen=True)
class CoverChange:
    """Point-count cover before and after, the change in percentage points and its 95 % interval."""

    level: str  # "class" or "group"
    name: str
    before_percent: float
    before_ci_low: float
    before_ci_high: float
    after_percent: float
    after_ci_low: float
    after_ci_high: float
    change_pts: float
    change_ci_low: float
    change_ci_high: float
    exceeds_uncertainty: bool
    before_area_percent: float
    after_area_percent: float


def _value(row: dict, column: str) -> float:
    return float(row[column]) if row.get(column) not in ("", None) else 0.0


def cover_change(before: list[dict], after: list[dict], level: str = "class") -> list[CoverChange]:
    """Change of each counted class between two cover tables (rows as in cover.csv).

    The surveys are independent samples, so the change's standard error is the root sum of squares of the two
    standard errors; the change exceeds the uncertainty when its 95 % interval excludes zero.
    """
    by_name = {r["class_name"]: r for r in before}
    if set(by_name) != {r["class_name"] for r in after}:
        raise UsageError("the two runs use different class lists (taxonomies); compare runs made with the same model")
    changes = []
    for row_after in after:
        row_before = by_name[row_after["class_name"]]
        if row_after["excluded"] == "1" or row_before["excluded"] == "1":
            continue
        change = _value(row_after, "point_percent") - _value(row_before, "point_percent")
        error = math.hypot(_value(row_after, "point_se"), _value(row_before, "point_se"))
        low, high = change - Z95 * error, change + Z95 * error
        changes.append(CoverChange(
            level, row_after["class_name"], _value(row_before, "point_percent"), _value(row_before, "point_ci_low"),
            _value(row_before, "point_ci_high"), _value(row_after, "point_percent"), _value(row_after, "point_ci_low"),
            _value(row_after, "point_ci_high"), change, low, high, bool(low > 0 or high < 0),
            _value(row_before, "percent_cover"), _value(row_after, "percent_cover")))
    return changes


def read_cover_table(run_dir: Path, name: str) -> list[dict]:
    path = run_dir / name
    if not path.exists():
        raise UsageError(f"{run_dir} has no {name}: give two finished `reefmap process` folders")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_change_csv(changes: list[CoverChange], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CHANGE_COLUMNS)
        for c in changes:
            row = asdict(c)
            writer.writerow([row[k] if isinstance(row[k], str) else
                             int(row[k]) if isinstance(row[k], bool) else f"{row[k]:.4f}" for k in CHANGE_COLUMNS])


def draw_change_chart(changes: list[CoverChange], path: Path, title: str) -> None:
    """Change per class/group with 95 % intervals; changes beyond the uncertainty in colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in changes if c.before_percent or c.after_percent]
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.2 + 0.3 * max(len(shown), 4)), squeeze=False)
    for ax, level in zip(axes[0], ("group", "class")):
        rows = [c for c in shown if c.level == level][::-1]
        y = range(len(rows))
        colours = ["tab:red" if c.exceeds_uncertainty and c.change_pts < 0 else
                   "tab:blue" if c.exceeds_uncertainty else "0.6" for c in rows]
        ax.barh(list(y), [c.change_pts for c in rows], color=colours)
        ax.errorbar([c.change_pts for c in rows], list(y), fmt="none", ecolor="black", capsize=3,
                    xerr=[[c.change_pts - c.change_ci_low for c in rows], [c.change_ci_high - c.change_pts for c in rows]])
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(list(y), [c.name for c in rows], fontsize=8)
        ax.set_xlabel("change in cover (percentage points), 95 % CI")
        ax.set_title(f"by {level}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare_runs(before: str | Path, after: str | Path, out_dir: str | Path) -> list[CoverChange]:
    """Write change.csv and change.png for two runs of the same transect into `out_dir`; returns the changes."""
    before, after, out_dir = Path(before), Path(after), Path(out_dir)
    changes = (cover_change(read_cover_table(before, "cover_groups.csv"), read_cover_table(after, "cover_groups.csv"),
                            "group")
               + cover_change(read_cover_table(before, "cover.csv"), read_cover_table(after, "cover.csv"), "class"))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out_dir}: {exc.strerror}; choose another --out") from None
    with atomic_path(out_dir / "change.csv") as partial_csv, atomic_path(out_dir / "change.png") as partial_png:
        write_change_csv(changes, partial_csv)
        draw_change_chart(changes, partial_png, f"cover change: {before.name} -> {after.name}")
    return changes
