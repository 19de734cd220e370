"""report.html / report.png, `reefmap compare` and `reefmap render-video` on a finished run."""

import base64
import csv
import json
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from reefmap.report.compare import cover_change
from test_process import run_cli

FIGURES = ("ortho", "cover-chart", "group-chart", "strip-chart")


def _images(html: str) -> dict[str, np.ndarray]:
    found = re.findall(r'<figure id="([a-z-]+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', html)
    return {key: cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR) for key, data in found}


def test_process_writes_a_self_contained_report_with_its_figures(oracle_run):
    html = (oracle_run / "report.html").read_text()
    images = _images(html)
    assert set(images) == set(FIGURES)
    assert all(image is not None and image.shape[0] > 100 and image.std() > 5 for image in images.values())
    assert "src=\"http" not in html and "<link" not in html  # nothing to fetch
    with open(oracle_run / "cover.csv") as f:
        top = max((r for r in csv.DictReader(f) if r["excluded"] == "0"), key=lambda r: float(r["percent_cover"]))
    assert f"<td>{top['class_name']}</td><td>{float(top['percent_cover']):.2f}</td>" in html
    page = cv2.imread(str(oracle_run / "report.png"))
    assert page.shape[0] > sum(images[k].shape[0] for k in FIGURES)


def test_report_command_regenerates_the_report(oracle_run, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(oracle_run, tmp_path / "run")
    (run / "report.html").unlink()
    (run / "report.png").unlink()
    code, out, _ = run_cli(monkeypatch, capsys, "report", run)
    assert code == 0 and (run / "report.html").exists() and (run / "report.png").exists()
    assert set(_images((run / "report.html").read_text())) == set(FIGURES)
    assert not list(run.glob(".report*"))
    code, _, err = run_cli(monkeypatch, capsys, "report", tmp_path / "nowhere")
    assert code != 0 and err.count("\n") == 1 and "not a finished `reefmap process` run" in err


def test_the_report_of_a_long_wide_map_stays_one_page(oracle_run, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(oracle_run, tmp_path / "run")
    cell = float(json.loads((run / "summary.json").read_text())["map"]["cell_size"])
    rng = np.random.default_rng(0)
    ortho = rng.integers(0, 256, (int(12 / cell), int(150 / cell), 4), dtype=np.uint8)  # 150 x 12 map units
    for name in ("ortho_rgb.png", "ortho_labels.png"):
        cv2.imwrite(str(run / name), ortho)
    code, _, _ = run_cli(monkeypatch, capsys, "report", run)
    figure = _images((run / "report.html").read_text())["ortho"]
    assert code == 0 and 3000 < figure.shape[0] <= 36 * 110  # 15 rows a map, each as tall as wide: 400 inches uncapped


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_report_renders_in_headless_chromium(oracle_run):
    proc = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", (oracle_run / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert f'data-figures-loaded="{len(FIGURES)}"' in proc.stdout


def _row(name, point, se, low, high, area=None, excluded="0"):
    return {"class_name": name, "point_percent": str(point), "point_se": str(se), "point_ci_low": str(low),
            "point_ci_high": str(high), "percent_cover": str(area if area is not None else point), "excluded": excluded}


def test_cover_change_and_whether_it_exceeds_the_uncertainty():
    before = [_row("coral", 30.0, 3.0, 24.0, 36.0), _row("sand", 70.0, 3.0, 64.0, 76.0), _row("fish", "", "", "", "", 0, "1")]
    after = [_row("coral", 20.0, 4.0, 12.0, 28.0), _row("sand", 76.0, 4.0, 68.0, 84.0), _row("fish", "", "", "", "", 0, "1")]
    changes = {c.name: c for c in cover_change(before, after)}
    assert set(changes) == {"coral", "sand"}  # excluded classes are not compared
    coral, sand = changes["coral"], changes["sand"]
    assert coral.change_pts == pytest.approx(-10.0)
    assert coral.change_ci_high == pytest.approx(-10.0 + 1.959964 * 5.0)  # SE of the change: hypot(3, 4) = 5
    assert coral.exceeds_uncertainty and not sand.exceeds_uncertainty  # +6 +- 9.8 includes zero
    from reefmap.errors import UsageError

    with pytest.raises(UsageError, match="different class lists"):
        cover_change(before, after[:2])


def test_compare_command_on_two_runs(oracle_run, tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "compare", oracle_run, oracle_run, "--out", tmp_path / "cmp")
    assert code == 0 and out.startswith("0 of ")
    with open(tmp_path / "cmp" / "change.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["level"] for r in rows} == {"class", "group"}
    assert all(float(r["change_pts"]) == 0 and r["exceeds_uncertainty"] == "0" for r in rows)
    chart = cv2.imread(str(tmp_path / "cmp" / "change.png"))
    assert chart is not None and min(chart.shape[:2]) > 200 and chart.std() > 5  # a drawn chart, not a blank canvas
    code, _, err = run_cli(monkeypatch, capsys, "compare", oracle_run, tmp_path, "--out", tmp_path / "cmp2")
    assert code != 0 and "has no cover_groups.csv" in err


def test_render_video_writes_h264_with_one_frame_per_processed_frame(oracle_run, tmp_path, monkeypatch, capsys):
    import json

    out = tmp_path / "qc.mp4"
    code, _, err = run_cli(monkeypatch, capsys, "render-video", oracle_run, "--out", out, "--quiet")
    assert code == 0, err
    capture = cv2.VideoCapture(str(out))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    frames = json.loads((oracle_run / "summary.json").read_text())["frames_processed"]
    assert fourcc in ("avc1", "h264") and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    ok, image = capture.read()
    assert ok and image.shape[1] == 2 * 480 and image.std() > 10
    assert not list(tmp_path.glob(".qc*"))
