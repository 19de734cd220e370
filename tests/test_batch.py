"""`reefmap batch`: a manifest of transects, one of them broken, gives runs, a recorded failure and one survey table."""

import csv
import json

import pytest

from test_process import run_cli


@pytest.fixture
def manifest(tmp_path, synthetic_transect):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video at all")
    path = tmp_path / "manifest.csv"
    video = synthetic_transect / "video.mp4"
    path.write_text("site,transect,date,video,end,depth_m,notes\n"
                    f"North Reef,T1,2026-11-20,{video},6,5,\n"
                    f"North Reef,T2,2026-11-20,{video},4,7,second pass\n"
                    "South Reef,T1,2026-11-21,broken.mp4,,6,camera flooded\n")
    return path


def _settings(tiny_weights):
    return ["--fps", "2", "--mapping", "learned", "--seg-weights", tiny_weights["segmentation"], "--depth-weights", tiny_weights["depth_pose"]]


def test_batch_maps_what_it_can_records_failures_and_tabulates(manifest, tiny_weights, tmp_path, monkeypatch, capsys):
    out = tmp_path / "survey"
    code, stdout, _ = run_cli(monkeypatch, capsys, "batch", manifest, "--out", out, "-q", *_settings(tiny_weights))
    assert code == 1 and "2 of 3 transects mapped; 1 failed" in stdout
    runs = ["North-Reef_T1_2026-11-20", "North-Reef_T2_2026-11-20"]
    assert all((out / r / "summary.json").exists() for r in runs)
    with open(out / "failures.csv") as f:
        failures = list(csv.DictReader(f))
    assert len(failures) == 1 and failures[0]["site"] == "South Reef" and "not a video" in failures[0]["error"]
    with open(out / "survey.csv") as f:
        survey = list(csv.DictReader(f))
    for run, transect in zip(runs, ("T1", "T2")):
        for level, table in (("class", "cover.csv"), ("group", "cover_groups.csv")):
            with open(out / run / table) as f:
                expected = list(csv.DictReader(f))
            got = [r for r in survey if r["transect"] == transect and r["level"] == level]
            assert [{k: r[k] for k in expected[0] if k in r} for r in got] == \
                   [{k: r[k] for k in expected[0] if k in got[0]} for r in expected]
    assert {r["depth_m"] for r in survey if r["transect"] == "T2"} == {"7"}
    assert json.loads((out / runs[1] / "summary.json").read_text())["window_s"][1] == pytest.approx(4.0)
    page = (out / "survey_report.html").read_text()
    assert 'id="survey-chart"' in page and "camera flooded" not in page and "not a video" in page

    before = (out / runs[0] / "summary.json").stat().st_mtime_ns
    code, stdout, _ = run_cli(monkeypatch, capsys, "batch", manifest, "--out", out, "-q", *_settings(tiny_weights))
    assert code == 1 and (out / runs[0] / "summary.json").stat().st_mtime_ns == before  # finished runs are skipped
    with open(out / "survey.csv") as f:
        assert list(csv.DictReader(f)) == survey
    assert json.loads((out / "batch_summary.json").read_text())["settings"]["threads"] >= 1

    # other settings: the finished runs are processed again, and say why; the row's own end beats the batch's
    from reefmap.run.batch import run_batch

    summary = run_batch(manifest, out, quiet=True, fps=3, end_s="3", mapping="learned", seg_weights=str(tiny_weights["segmentation"]),
                        depth_weights=str(tiny_weights["depth_pose"]))
    assert summary["reprocessed"] == {r: "settings (fps)" for r in runs}  # both rows give their own end
    assert (out / runs[0] / "summary.json").stat().st_mtime_ns != before
    first = json.loads((out / runs[0] / "summary.json").read_text())
    assert first["settings"]["fps"] == 3 and first["window_s"][1] == pytest.approx(6.0)


@pytest.mark.parametrize("text, message", [
    ("site,video\nA,x.mp4\n", "lacks the column(s) transect"),
    ("site,transect,video\n", "has no transects"),
    ("site,transect,video\nA,1,x.mp4\nA,1,y.mp4\n", "names the same transect twice"),
])
def test_bad_manifests_are_one_clear_line(tmp_path, monkeypatch, capsys, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text)
    code, _, err = run_cli(monkeypatch, capsys, "batch", path, "--out", tmp_path / "o")
    assert code == 2 and err.count("\n") == 1 and message in err


def test_a_worker_that_dies_is_that_transects_failure():
    from concurrent.futures.process import BrokenProcessPool

    from reefmap.run.batch import _result_or_crash

    def killed():
        raise BrokenProcessPool("A process in the process pool was terminated abruptly")

    error = _result_or_crash(killed)
    assert error.startswith("the worker processing this transect died (BrokenProcessPool: A process")
    assert "fewer --jobs" in error
    assert _result_or_crash(lambda: None) is None


def test_batch_takes_every_processing_option_of_process(manifest, tiny_weights, tmp_path, monkeypatch, capsys):
    """Options `process` has reach each transect through `batch` too (here --voxel-size, --no-smoothing, --segment-m)."""
    out = tmp_path / "survey"
    code, _, err = run_cli(monkeypatch, capsys, "batch", manifest, "--out", out, "-q", *_settings(tiny_weights),
                           "--voxel-size", "0.03", "--no-smoothing", "--segment-m", "2")
    assert code == 1, err  # the broken row
    summary = json.loads((out / "North-Reef_T1_2026-11-20" / "summary.json").read_text())
    assert summary["settings"]["voxel_size"] == 0.03 and summary["settings"]["smooth_labels"] is False
    assert summary["settings"]["segment_length"] == 2.0
