"""Each export opens as the tool it is meant for expects: world-file rasters, LAZ, CoralNet CSVs, group cover."""

import csv
import json

import cv2
import numpy as np
import pytest

from reefmap.mapping.cloud import read_ply
from reefmap.report.cover import top_down_grid
from reefmap.report.groups import default_groups, load_groups
from reefmap.taxonomy import default_taxonomy

TAX = default_taxonomy()


def _world_file(path):
    a, d, b, e, c, f = (float(v) for v in path.read_text().split())
    return a, d, b, e, c, f


def test_world_files_place_the_map_points_on_their_pixels(oracle_run):
    summary = json.loads((oracle_run / "summary.json").read_text())
    frame = summary["map"]["seabed_frame"]
    cloud = read_ply(oracle_run / "cloud.ply")
    local = (cloud.points - np.array(frame["origin"])) @ np.array(frame["axes_rows_u_v_up"]).T
    a, d, b, e, c, f = _world_file(oracle_run / "ortho_labels.pgw")
    assert d == b == 0 and a == -e == summary["map"]["cell_size"]
    col = np.floor((local[:, 0] - (c - a / 2)) / a).astype(int)
    row = np.floor((local[:, 1] - (f - e / 2)) / e).astype(int)
    ortho = cv2.imread(str(oracle_run / "ortho_labels.png"), cv2.IMREAD_UNCHANGED)
    h, w = ortho.shape[:2]
    inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
    assert inside.mean() > 0.999
    # the highest point of each pixel has the class drawn there, and the height raster holds its height
    order = np.lexsort((-local[:, 2], row * w + col))
    top = order[np.unique((row * w + col)[order], return_index=True)[1]]
    top = top[inside[top] & (cloud.labels[top] > 0)]
    drawn = ortho[row[top], col[top], 2::-1]
    assert (drawn == TAX.colour_lut()[cloud.labels[top]]).all(axis=1).mean() > 0.99
    height = cv2.imread(str(oracle_run / "ortho_height.tif"), cv2.IMREAD_UNCHANGED)
    assert height.dtype == np.float32 and height.shape == (h, w)
    assert (np.abs(height[row[top], col[top]] - local[top, 2]) < 1e-3).mean() > 0.99  # pixel edges may round over
    assert np.isnan(height[ortho[..., 3] == 0]).all()
    assert _world_file(oracle_run / "ortho_height.tfw") == _world_file(oracle_run / "ortho_rgb.pgw") == (a, d, b, e, c, f)


def test_ortho_is_seen_from_above_not_mirrored():
    # travel along +u; a point on the left of travel (+v) is at the top of the image
    local = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    grid = top_down_grid(local, np.array([5, 18, 35]), np.zeros((3, 3), np.uint8), cell_size=0.5, top_band=0.1, max_id=39)
    assert grid.labels.tolist() == [[35, 0, 0], [5, 0, 18]]


def test_laz_holds_the_same_points_and_classes_as_the_ply(oracle_run):
    import laspy

    las = laspy.read(oracle_run / "cloud.laz")
    cloud = read_ply(oracle_run / "cloud.ply")
    assert las.header.are_points_compressed and len(las.points) == len(cloud)
    assert np.bincount(las.classification, minlength=40).tolist() == np.bincount(cloud.labels, minlength=40).tolist()


def test_group_cover_adds_up_its_member_classes(oracle_run):
    with open(oracle_run / "cover.csv") as f:
        classes = {r["class_name"]: r for r in csv.DictReader(f)}
    with open(oracle_run / "cover_groups.csv") as f:
        groups = {r["class_name"]: r for r in csv.DictReader(f)}
    members = dict(zip(default_groups().names, default_groups().members))
    for name, group in groups.items():
        if name in members:
            expected = sum(float(classes[m]["percent_cover"] or 0) for m in members[name])
            assert float(group["percent_cover"]) == pytest.approx(expected, abs=1e-3)
    counted = [r for r in groups.values() if r["excluded"] == "0"]
    for column in ("percent_cover", "surface_percent", "point_percent"):
        assert sum(float(r[column]) for r in counted) == pytest.approx(100.0, abs=0.01)
    assert groups["excluded"]["excluded"] == "1"


def test_groups_file_errors_are_one_clear_line(tmp_path):
    from reefmap.errors import ReefmapError
    from reefmap.report.groups import check_groups

    bad = tmp_path / "groups.json"
    bad.write_text('{"groups": [{"name": "corals", "classes": ["branching alive", "branchin dead"]}]}')
    with pytest.raises(ReefmapError, match="branchin dead"):
        check_groups(load_groups(bad), TAX)
    bad.write_text('{"groups": [{"name": "x"}]}')
    with pytest.raises(ReefmapError, match="needs a 'groups' list"):
        load_groups(bad)
    groups, lookup = default_groups().grouping(TAX)
    assert groups.by_id(int(lookup[9])).name == "excluded" and "ignore_in_cover" in groups.by_id(int(lookup[9])).roles


def test_groups_file_overrides_the_shipped_groups(synthetic_transect, tmp_path, monkeypatch, capsys):
    from test_process import run_cli

    groups = tmp_path / "groups.yaml"
    groups.write_text("groups:\n  - name: living\n    colour: [200, 50, 50]\n"
                      "    classes: [massive/meandering alive, branching alive, acropora alive, table acropora alive]\n")
    args = ["process", synthetic_transect / "video.mp4", "--fps", "2", "--oracle", synthetic_transect, "-q"]
    code, _, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "run", "--groups", groups)
    assert code == 0, err
    with open(tmp_path / "run" / "cover_groups.csv") as f:
        rows = {r["class_name"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["living", "other", "excluded"]
    assert float(rows["living"]["percent_cover"]) + float(rows["other"]["percent_cover"]) == pytest.approx(100.0, abs=0.01)
    code, _, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "run2", "--groups", tmp_path / "none.json")
    assert code == 1 and "cannot read groups file" in err and err.count("\n") == 1
    assert not (tmp_path / "run2").exists()


def test_segments_table_carries_each_segments_rugosity(oracle_run):
    by_segment = json.loads((oracle_run / "summary.json").read_text())["rugosity"]["by_segment"]
    with open(oracle_run / "cover_segments.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["segment_rugosity"]) == pytest.approx(by_segment[int(r["segment"])], abs=1e-4)
                        for r in rows)
    assert all(float(r["segment_rugosity"]) >= 1.0 for r in rows)


def test_atomic_writes_leave_the_old_file_or_the_whole_new_one(tmp_path):
    from reefmap.io.files import atomic_path, write_text_atomic

    target = tmp_path / "manifest_row.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as partial:
            partial.write_text("half of the new")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["manifest_row.json"]
    with atomic_path(target) as partial:
        assert partial.suffix == ".json" and partial.name.startswith(".")
        partial.write_text("new")
        assert target.read_text() == "old"  # nothing shows until the block ends
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["manifest_row.json"]
