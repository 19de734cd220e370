"""survey_report.html: one page for a whole batch — group cover per transect with intervals, links, failures."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import numpy as np

from reefmap.io.files import write_text_atomic
from reefmap.report.summary import load_summary


def _group_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "cover_groups.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["excluded"] == "0"]


def _float(value: str) -> float:
    return float(value) if value else 0.0


def group_chart(names: list[str], tables: list[list[dict]], colours: dict[str, tuple]) -> bytes:
    """Stacked group cover per transect, with the point-count interval of live hard coral marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [r["class_name"] for r in tables[0]] if tables else []
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names) + 3), 4.5))
    bottom = np.zeros(len(names))
    for group in groups:
        values = np.array([_float(next((r["percent_cover"] for r in t if r["class_name"] == group), "")) for t in tables])
        ax.bar(names, values, bottom=bottom, color=colours.get(group, (0.6, 0.6, 0.6)), edgecolor="0.3",
               linewidth=0.4, label=group)
        bottom += values
    live = [next((r for r in t if r["class_name"] == "hard coral alive"), None) for t in tables]
    if all(live):
        point = np.array([_float(r["point_percent"]) for r in live])
        ax.errorbar(names, point, yerr=[point - [_float(r["point_ci_low"]) for r in live],
                                        [_float(r["point_ci_high"]) for r in live] - point],
                    fmt="o", color="black", capsize=4, label="live hard coral, points 95 % CI")
    ax.set_ylabel("cover (%)")
    ax.set_ylim(0, 100)
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_survey_report(finished: list, out_dir: Path, failures: dict[str, str]) -> Path:
    """Write out_dir/survey_report.html for the finished transects (see `reefmap.run.batch`) and the failed ones."""
    tables = [_group_rows(out_dir / t.name) for t in finished]
    colours = {}
    for t in finished:
        for record in load_summary(out_dir / t.name).group_cover:
            colours[record["class_name"]] = tuple(v / 255 for v in record.get("colour", (160, 160, 160)))
    rows = []
    for t, table in zip(finished, tables):
        live = next((r for r in table if r["class_name"] == "hard coral alive"), None)
        live_text = "n/a" if live is None else (f"{_float(live['percent_cover']):.1f} % (points "
                                                f"{_float(live['point_ci_low']):.1f}–{_float(live['point_ci_high']):.1f})")
        rows.append(f"<tr><td>{html.escape(t.row['site'])}</td><td>{html.escape(t.row['transect'])}</td>"
                    f"<td>{html.escape(t.row.get('date', ''))}</td><td>finished</td><td>{html.escape(live_text)}</td>"
                    f"<td><a href=\"{html.escape(t.name)}/report.html\">report</a></td></tr>")
    for name, error in failures.items():
        rows.append(f"<tr class=\"failed\"><td colspan=\"3\">{html.escape(name)}</td><td>failed</td>"
                    f"<td colspan=\"2\">{html.escape(error)}</td></tr>")
    chart = ""
    if finished:
        data = base64.b64encode(group_chart([t.name for t in finished], tables, colours)).decode()
        chart = f'<figure id="survey-chart"><img alt="group cover per transect" src="data:image/png;base64,{data}"></figure>'
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reefmap survey</title>
<style>body {{ font-family: sans-serif; margin: 2em; max-width: 1250px; }} img {{ max-width: 100%; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }}
tr.failed {{ background: #fdd; }}</style></head>
<body><h1>reefmap survey</h1>
<p>{len(finished)} transects mapped, {len(failures)} failed. Cover per transect and class is in survey.csv.</p>
{chart}
<table id="transects"><tr><th>site</th><th>transect</th><th>date</th><th>status</th><th>live hard coral</th><th></th></tr>
{''.join(rows)}</table>
</body></html>
"""
    path = out_dir / "survey_report.html"
    write_text_atomic(path, page)
    return path
