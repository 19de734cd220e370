"""The run report: report.png (one page) and a self-contained report.html, drawn from a run folder's files only."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reefmap.errors import UsageError
from reefmap.io.files import atomic_path
from reefmap.report.summary import RunSummary, load_summary

STRIP_ROW_M = 10.0  # the ortho maps are cut into rows of at most this many map units
MAX_ORTHO_FIGURE_IN = 36.0  # the report's ortho figure stays one page (4000 px) however long and wide the map


@dataclass
class RunRecord:
    """What a report shows, read back from a finished (or staged) run folder."""

    folder: Path
    summary: RunSummary
    classes: list[dict]
    groups: list[dict]
    segments: list[dict]
    ortho_rgb: np.ndarray  # (H, W, 4) RGBA
    ortho_labels: np.ndarray  # (H, W, 4) RGBA

    @property
    def cell_size(self) -> float:
        return float(self.summary.map["cell_size"])


def read_run(folder: str | Path, summary: RunSummary | None = None) -> RunRecord:
    """Read a run folder; `summary` replaces summary.json for a run still being written."""
    folder = Path(folder)
    needed = ["cover.csv", "cover_groups.csv", "cover_segments.csv", "ortho_rgb.png", "ortho_labels.png"]
    missing = [name for name in needed + ([] if summary else ["summary.json"]) if not (folder / name).exists()]
    if missing:
        raise UsageError(f"{folder} is not a finished `reefmap process` run (missing {', '.join(missing)}); "
                         "process the video first or check the path")
    summary = summary or load_summary(folder)
    return RunRecord(folder, summary, _read_csv(folder / "cover.csv"), _read_csv(folder / "cover_groups.csv"),
                     _read_csv(folder / "cover_segments.csv"), _read_rgba(folder / "ortho_rgb.png"),
                     _read_rgba(folder / "ortho_labels.png"))


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _read_rgba(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise UsageError(f"{path} is not the RGBA ortho image reefmap writes; process the video again")
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


def _float(value: str) -> float:
    return float(value) if value not in ("", None) else 0.0


def counted_rows(rows: list[dict], min_percent: float = 0.05) -> list[dict]:
    """Counted classes with a visible share (area or point estimate), largest first."""
    shown = [r for r in rows if r["excluded"] == "0"
             and max(_float(r["percent_cover"]), _float(r["point_percent"])) >= min_percent]
    return sorted(shown, key=lambda r: -_float(r["percent_cover"]))


def key_figures(record: RunRecord) -> list[tuple[str, str]]:
    """(label, value) pairs for the report's header."""
    s = record.summary
    units = _unit(record)
    rugosity = s.rugosity.get("overall")
    length = len(record.ortho_labels[0]) * record.cell_size
    mapped_area = sum(_float(r["planar_area"]) for r in record.classes if r["excluded"] == "0")
    live = next((r for r in record.groups if r["class_name"] == "hard coral alive"), None)
    figures = [
        ("video", ", ".join(Path(v["path"]).name for v in s.inputs)),
        ("frames processed", str(s.frames_processed)),
        ("map length", f"{length:.1f} {units}"),
        ("mapped area (counted)", f"{mapped_area:.2f} {units}²"),
        ("rugosity", f"{rugosity:.3f}" if rugosity else "n/a"),
        ("units", s.units),
        ("perception", s.perception),
        ("processing", f"{s.timings.get('total_s', 0):.1f} s "
                       f"({s.timings.get('frames_per_s')} frames/s)"),
    ]
    if live:
        figures.insert(2, ("live hard coral", f"{_float(live['percent_cover']):.1f} % "
                                              f"(points: {_float(live['point_percent']):.1f} %, 95 % CI "
                                              f"{_float(live['point_ci_low']):.1f}–{_float(live['point_ci_high']):.1f})"))
    return figures


def _colours(records: list[dict]) -> dict[str, tuple[float, float, float]]:
    """Class (or group) name -> matplotlib colour, from the summary's cover records."""
    return {r["class_name"]: tuple(v / 255 for v in r.get("colour", (160, 160, 160))) for r in records}


def draw_cover_chart(ax, rows: list[dict], colours: dict, title: str) -> None:
    """Horizontal bars of planar cover; the point-count estimate and its 95 % interval drawn over each bar."""
    names = [r["class_name"] for r in rows][::-1]
    area = [_float(r["percent_cover"]) for r in rows][::-1]
    point = np.array([_float(r["point_percent"]) for r in rows][::-1])
    low = np.array([_float(r["point_ci_low"]) for r in rows][::-1])
    high = np.array([_float(r["point_ci_high"]) for r in rows][::-1])
    y = np.arange(len(rows))
    from matplotlib.patches import Patch

    ax.barh(y, area, color=[colours.get(n, (0.6, 0.6, 0.6)) for n in names], edgecolor="0.3", linewidth=0.5)
    points = ax.errorbar(point, y, xerr=[point - low, high - point], fmt="o", color="black", markersize=3, capsize=3,
                         linewidth=1)
    ax.legend([Patch(facecolor="0.85", edgecolor="0.3"), points], ["area cover", "point count, 95 % CI"], fontsize=7,
              loc="lower right")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("cover (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def draw_strip_chart(ax, record: RunRecord, colours: dict) -> None:
    """Stacked cover per segment along the tape, with rugosity per segment on a second axis."""
    segments = sorted({int(r["segment"]) for r in record.segments})
    names = [r["class_name"] for r in counted_rows(record.classes)]
    starts = {int(r["segment"]): float(r["start"]) for r in record.segments}
    length = float(record.summary.segments["length"])
    bottom = np.zeros(len(segments))
    for name in names:
        share = {int(r["segment"]): _float(r["percent_cover"]) for r in record.segments if r["class_name"] == name}
        values = np.array([share.get(s, 0.0) for s in segments])
        ax.bar([starts[s] + length / 2 for s in segments], values, width=length * 0.95, bottom=bottom,
               color=colours.get(name, (0.6, 0.6, 0.6)), edgecolor="0.3", linewidth=0.3, label=name)
        bottom += values
    ax.set_xlabel(f"distance along the transect ({_unit(record)})")
    ax.set_ylabel("cover (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"cover along the transect, {length:g}-unit segments", fontsize=10)
    rugosity = record.summary.rugosity.get("by_segment") or []
    if any(r is not None for r in rugosity):
        twin = ax.twinx()
        x = [(k + 0.5) * length for k, r in enumerate(rugosity) if r is not None]
        twin.plot(x, [r for r in rugosity if r is not None], "k.-", label="rugosity")
        twin.set_ylabel("rugosity")
        twin.legend(fontsize=7, loc="upper right")


def draw_ortho_rows(axes, image: np.ndarray, cell_size: float, title: str, unit: str) -> None:
    """The ortho image cut into rows of at most STRIP_ROW_M, each on its own axis, with distances on x."""
    width_m = image.shape[1] * cell_size
    per_row = int(math.ceil(min(STRIP_ROW_M, width_m) / cell_size))
    for k, ax in enumerate(axes):
        piece = image[:, k * per_row:(k + 1) * per_row]
        start = k * per_row * cell_size
        if piece.size:
            ax.imshow(piece, extent=(start, start + piece.shape[1] * cell_size, 0, piece.shape[0] * cell_size),
                      interpolation="nearest")
        ax.set_xlim(start, start + per_row * cell_size)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    axes[0].set_title(title, fontsize=10)
    _scale_bar(axes[-1], per_row * cell_size, unit)


def _unit(record: RunRecord) -> str:
    return "m" if record.summary.units.startswith("metres") else "units"


def _scale_bar(ax, row_length: float, unit: str) -> None:
    bar = 10 ** math.floor(math.log10(max(row_length / 4, 1e-6)))
    x0, y0 = ax.get_xlim()[0] + 0.02 * row_length, ax.get_ylim()[0] - 0.0
    ax.plot([x0, x0 + bar], [y0, y0], color="black", linewidth=4, solid_capstyle="butt", clip_on=False)
    ax.text(x0 + bar / 2, y0, f"{bar:g} {unit}", ha="center", va="bottom", fontsize=7)


def _legend(fig, names: list[str], colours: dict) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=colours.get(n, (0.6, 0.6, 0.6)), edgecolor="0.3", label=n) for n in names]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, max(1, len(handles))), fontsize=7, frameon=False)


def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def _ortho_rows(record: RunRecord) -> int:
    width_m = record.ortho_labels.shape[1] * record.cell_size
    return max(1, int(math.ceil(width_m / STRIP_ROW_M)))


def figures(record: RunRecord) -> dict[str, bytes]:
    """PNG bytes of each report figure: ortho maps, class cover, group cover, strip chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = _colours(record.summary.cover)
    group_colours = _colours(record.summary.group_cover)
    rows = counted_rows(record.classes)
    n_rows = _ortho_rows(record)
    height_ratio = record.ortho_labels.shape[0] * record.cell_size / STRIP_ROW_M
    out = {}
    ortho_height = min(MAX_ORTHO_FIGURE_IN, 1.2 + 2 * n_rows * max(0.6, 11 * height_ratio * 0.8))
    fig, axes = plt.subplots(2 * n_rows, 1, figsize=(11, ortho_height), squeeze=False)
    draw_ortho_rows(axes[:n_rows, 0], record.ortho_rgb, record.cell_size, "ortho image (seen from above)", _unit(record))
    draw_ortho_rows(axes[n_rows:, 0], record.ortho_labels, record.cell_size, "class map", _unit(record))
    _legend(fig, [r["class_name"] for r in rows], colours)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    out["ortho"] = _figure_png(fig)
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.28 * max(len(rows), 3)))
    draw_cover_chart(ax, rows, colours, "cover by class")
    fig.tight_layout()
    out["cover-chart"] = _figure_png(fig)
    group_rows = counted_rows(record.groups, 0.0)
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.3 * max(len(group_rows), 3)))
    draw_cover_chart(ax, group_rows, group_colours, "cover by group")
    fig.tight_layout()
    out["group-chart"] = _figure_png(fig)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    draw_strip_chart(ax, record, colours)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.06, 1.0))
    fig.tight_layout()
    out["strip-chart"] = _figure_png(fig)
    return out


TRUST_COLOURS = {"good": "#1a7f37", "check": "#9a6700", "do not use": "#cf222e"}


def trust_pairs(record: RunRecord) -> list[tuple[str, str]]:
    """(label, text) pairs of the run's trust verdict: overall, then each part with its reasons."""
    trust = record.summary.trust
    if not trust:
        return [("trust", "not assessed (run made before reefmap recorded a trust verdict)")]
    return [("trust", trust["overall"].upper())] + [
        (name, f"{part['level']}: " + "; ".join(part["reasons"])) for name, part in trust["parts"].items()]


def trust_panel_html(record: RunRecord) -> str:
    """The report's first panel: can these numbers be used, per part and overall, and why."""
    trust = record.summary.trust
    if not trust:
        return '<section id="trust"><h2>Can these numbers be used?</h2><p>Not assessed.</p></section>'
    items = "".join(
        f'<li><b style="color:{TRUST_COLOURS[part["level"]]}">{html.escape(name)}: {html.escape(part["level"])}</b>'
        f'<ul>{"".join(f"<li>{html.escape(r)}</li>" for r in part["reasons"])}</ul></li>'
        for name, part in trust["parts"].items())
    colour = TRUST_COLOURS[trust["overall"]]
    return (f'<section id="trust" data-level="{html.escape(trust["overall"])}"><h2>Can these numbers be used? '
            f'<span style="color:{colour}">{html.escape(trust["overall"].upper())}</span></h2><ul>{items}</ul></section>')


def report_page(record: RunRecord, images: dict[str, bytes]) -> np.ndarray:
    """report.png: the trust verdict, key figures, the maps, and the charts stacked on one RGB page."""
    header = _text_block(trust_pairs(record) + key_figures(record), width=1210)
    parts = [header] + [_decode(images[k]) for k in ("ortho", "cover-chart", "group-chart", "strip-chart")]
    width = max(p.shape[1] for p in parts)
    padded = [np.pad(p, ((0, 10), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in parts]
    return np.concatenate(padded, axis=0)


def _decode(png: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _text_block(pairs: list[tuple[str, str]], width: int) -> np.ndarray:
    line = 26
    block = np.full((20 + line * (len(pairs) + 1), width, 3), 255, np.uint8)
    cv2.putText(block, "reefmap transect report", (12, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
    for k, (label, value) in enumerate(pairs, start=1):
        text = f"{label}: {value}".replace("–", "-").replace("²", "^2")[:150].encode("ascii", "replace").decode()
        cv2.putText(block, text, (12, 28 + line * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    return block


def report_html(record: RunRecord, images: dict[str, bytes]) -> str:
    """A self-contained HTML page: key figures, the four figures inline, and the cover tables."""
    def img(key: str, alt: str) -> str:
        data = base64.b64encode(images[key]).decode()
        return f'<figure id="{key}"><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'

    def table(rows: list[dict], caption: str) -> str:
        head = ("class", "area cover %", "area", "3D surface %", "points %", "95 % CI", "SE", "mean confidence")
        body = "".join(
            f"<tr><td>{html.escape(r['class_name'])}</td><td>{_float(r['percent_cover']):.2f}</td>"
            f"<td>{_float(r['planar_area']):.3g}</td><td>{_float(r['surface_percent']):.2f}</td>"
            f"<td>{_float(r['point_percent']):.2f}</td>"
            f"<td>{_float(r['point_ci_low']):.2f}–{_float(r['point_ci_high']):.2f}</td>"
            f"<td>{_float(r['point_se']):.2f}</td><td>{r['mean_confidence']}</td></tr>" for r in rows)
        return (f"<table><caption>{html.escape(caption)}</caption><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>"
                f"{body}</table>")

    excluded = ", ".join(r["class_name"] for r in record.classes if r["excluded"] == "1")
    figures_dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in key_figures(record))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>reefmap report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1250px; color: #222; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }} dt {{ font-weight: bold; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }} td:first-child {{ text-align: left; }}
caption {{ font-weight: bold; text-align: left; }}
</style></head>
<body>
<h1>reefmap transect report</h1>
{trust_panel_html(record)}
<dl id="key-figures">{figures_dl}</dl>
<h2>Maps</h2>{img("ortho", "ortho image and class map of the transect seen from above")}
<h2>Cover</h2>{img("cover-chart", "cover by class with point-count 95 % intervals")}
{img("group-chart", "cover by class group")}
<h2>Along the transect</h2>{img("strip-chart", "cover and rugosity per segment along the transect")}
<h2>Tables</h2>
{table(counted_rows(record.groups, 0.0), "cover by group")}
{table(counted_rows(record.classes, 0.0), "cover by class (classes seen in the map)")}
<p>Excluded from cover: {html.escape(excluded)}. Area cover is the share of the mapped top-down area; the point count
samples {html.escape(record.summary.point_count_method)}.</p>
<script>
window.addEventListener("load", () => {{
  const images = Array.from(document.images);
  document.body.dataset.figuresLoaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
}});
</script>
</body></html>
"""


def write_report(folder: str | Path, summary: RunSummary | None = None, out_folder: str | Path | None = None) -> list[Path]:
    """report.html and report.png for the run in `folder`, written into `out_folder` (default: the run folder),
    each through a temporary file so a half-written report never looks finished."""
    record = read_run(folder, summary)
    images = figures(record)
    out_folder = Path(out_folder or folder)
    page = report_page(record, images)
    html_path, png_path = out_folder / "report.html", out_folder / "report.png"
    with atomic_path(html_path) as html_tmp, atomic_path(png_path) as png_tmp:
        html_tmp.write_text(report_html(record, images), encoding="utf-8")
        if not cv2.imwrite(str(png_tmp), cv2.cvtColor(page, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {png_path}")
    return [html_path, png_path]
