"""Same input, same figures: the real clip with the shipped weights, at two thread counts and on every executor."""

import csv
import importlib.util
from pathlib import Path

import pytest

import reefmap

SHORT = {"end_s": "2", "fps": 3.0, "mapping": "learned"}  # six frames of the real clip; COLMAP differs by threads


def cover_rows(run: Path) -> dict[str, dict[str, float]]:
    with open(run / "cover.csv") as f:
        return {r["class_name"]: {k: float(r[k]) for k in ("percent_cover", "point_percent", "point_se")}
                for r in csv.DictReader(f) if r["excluded"] == "0"}


def assert_same_figures(a: dict, b: dict, point_tolerance) -> None:
    """Planar cover within 0.05 points per class; point-count cover within `point_tolerance(row_a, row_b)`."""
    assert a.keys() == b.keys()
    for name in a:
        assert abs(a[name]["percent_cover"] - b[name]["percent_cover"]) <= 0.05, name
        assert abs(a[name]["point_percent"] - b[name]["point_percent"]) <= point_tolerance(a[name], b[name]), name


@pytest.fixture
def shipped_defaults(monkeypatch, tmp_path):
    """The repository's weights/ as the defaults, whatever the user's folders hold."""
    monkeypatch.setenv("REEFMAP_WEIGHTS", str(Path(__file__).resolve().parents[1] / "weights"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def test_two_thread_counts_give_the_same_cover(real_clip, shipped_defaults, tmp_path):
    runs = {t: reefmap.process(real_clip, tmp_path / f"threads{t}", threads=t, quiet=True, **SHORT) for t in (1, 2)}
    assert [runs[t].summary.threads for t in (1, 2)] == [1, 2]
    assert_same_figures(cover_rows(tmp_path / "threads1"), cover_rows(tmp_path / "threads2"),
                        lambda a, b: max(a["point_se"], b["point_se"]))


@pytest.mark.slow
def test_executors_give_the_same_survey(real_clip, shipped_defaults, tmp_path):
    """Locally twice (byte-identical cover tables), in a pool of two and as Ray tasks (the same figures, the same
    survey table and the same recorded failure)."""
    (tmp_path / "broken.mp4").write_text("not a video at all")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("site,transect,video,start,end\n"
                        f"Real,A,{real_clip},0,2\n"
                        f"Real,B,{real_clip},1.5,3.5\n"
                        f"Real,C,{tmp_path / 'broken.mp4'},,\n")
    executors = {"local": {}, "again": {}, "pool": {"jobs": 2}}
    if importlib.util.find_spec("ray"):
        executors["ray"] = {"ray": "local"}
    for name, how in executors.items():
        summary = reefmap.batch(manifest, tmp_path / name, quiet=True, fps=SHORT["fps"], threads=2, **how)
        assert list(summary["failed"]) == ["Real_C"], summary["failed"]
    transects = sorted(p.name for p in (tmp_path / "local").iterdir() if (p / "cover.csv").exists())
    assert len(transects) == 2
    for name in executors.keys() - {"local"}:
        assert (tmp_path / name / "failures.csv").read_text() == (tmp_path / "local" / "failures.csv").read_text()
    for transect in transects:
        local = tmp_path / "local" / transect
        assert (local / "cover.csv").read_bytes() == (tmp_path / "again" / transect / "cover.csv").read_bytes()
        for name in executors.keys() - {"local", "again"}:
            assert_same_figures(cover_rows(local), cover_rows(tmp_path / name / transect), lambda a, b: 0.5)
