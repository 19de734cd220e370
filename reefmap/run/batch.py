"""Many transects from one manifest: each processed into its own run folder, failures recorded, one survey table.

A manifest is a CSV with one row per transect. Columns (only `site`, `transect` and `video` are required):
site, transect, date, video (one file, or GoPro chapters joined by ';'), start, end, camera, tape_length_m,
altitude_m, depth_m, notes. Relative video paths are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import re
import sys
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from reefmap.errors import ReefmapError, UsageError
from reefmap.io.files import atomic_path, write_text_atomic
from reefmap.report.summary import load_summary

REQUIRED = ("site", "transect", "video")
OPTIONAL = ("date", "start", "end", "camera", "tape_length_m", "altitude_m", "depth_m", "notes")
ROW_FILE = "manifest_row.json"
SURVEY_COLUMNS = ("site", "transect", "date", "depth_m", "level", "class_id", "class_name", "percent_cover",
                  "planar_area", "surface_percent", "surface_area", "point_percent", "point_se", "point_ci_low",
                  "point_ci_high", "excluded", "units")
FAILURE_COLUMNS = ("site", "transect", "date", "error")


@dataclass(frozen=True)
class Transect:
    """One manifest row: where its video is and how to process it."""

    row: dict[str, str]
    videos: tuple[Path, ...]

    @property
    def name(self) -> str:
        parts = [self.row["site"], self.row["transect"], self.row.get("date", "")]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(p for p in parts if p)).strip("-") or "transect"

    def settings(self) -> dict:
        """`reefmap.process` settings from the row's own columns."""
        settings = {}
        for column, key, kind in (("start", "start_s", str), ("end", "end_s", str), ("camera", "camera", str),
                                  ("tape_length_m", "tape_length_m", float), ("altitude_m", "altitude_m", float)):
            value = self.row.get(column, "").strip()
            if value:
                try:
                    settings[key] = kind(value)
                except ValueError:
                    raise UsageError(f"transect {self.name}: {column} '{value}' is not a number") from None
        return settings


def read_manifest(path: str | Path) -> list[Transect]:
    """The manifest's transects; a malformed manifest is one clear error."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}; check the path") from None
    if not rows:
        raise UsageError(f"manifest {path} has no transects; add one row per transect under a header line")
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        raise UsageError(f"manifest {path} lacks the column(s) {', '.join(missing)}; its header needs "
                         f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})")
    transects = []
    for row in rows:
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        videos = tuple(path.parent / v.strip() if not Path(v.strip()).is_absolute() else Path(v.strip())
                       for v in row["video"].split(";") if v.strip())
        transects.append(Transect(row, videos))
    names = [t.name for t in transects]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"manifest {path} names the same transect twice: {', '.join(duplicates)}; "
                         "give each row its own site/transect/date")
    return transects


def run_settings(transect: Transect, settings: dict) -> dict:
    """The `reefmap.process` settings of one transect: the batch's, overridden by the row's own columns."""
    return {**settings, **transect.settings()}


def weights_record(settings: dict) -> dict:
    """The sha256 of each network's weights that `settings` run with (the path where there is no file)."""
    from reefmap.models.weights import default_weights, sha256_file

    weights = {}
    for task, key in (("segmentation", "seg_weights"), ("depth_pose", "depth_weights")):
        path = Path(settings.get(key) or default_weights(task))
        weights[task] = sha256_file(path) if path.is_file() else str(path)
    return weights


def run_record(transect: Transect, settings: dict, weights: dict) -> dict:
    """What decides a transect's results: its manifest row, its settings, its video files (size and time) and the
    `weights_record` it runs with; a finished run is kept only while this is unchanged."""
    from reefmap.config import ProcessConfig
    from reefmap.io.video import parse_time
    from reefmap.run.resume import NEUTRAL_SETTINGS, input_files

    resolved = {**ProcessConfig().to_dict(), **run_settings(transect, settings)}
    resolved = {k: parse_time(v) if k in ("start_s", "end_s") else v for k, v in resolved.items()
                if k not in NEUTRAL_SETTINGS}
    return json.loads(json.dumps({"row": transect.row, "settings": {k: resolved[k] for k in sorted(resolved)},
                                  "videos": input_files(list(transect.videos)), "weights": weights}, default=str))


def finished_state(run_dir: Path, record: dict) -> str | None:
    """'finished' when the run folder holds a finished run of exactly `record`, 'changed: <what>' when it holds
    one made from other inputs or settings, None when it holds none."""
    marker = run_dir / ROW_FILE
    if not ((run_dir / "summary.json").exists() and marker.exists()):
        return None
    try:
        before = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if before == record:
        return "finished"
    changed = [part for part in record if before.get(part) != record[part]]
    if "settings" in changed:
        old, new = before.get("settings", {}), record["settings"]
        changed[changed.index("settings")] = "settings (" + ", ".join(
            sorted(k for k in {*old, *new} if old.get(k) != new.get(k))) + ")"
    return "changed: " + ", ".join(changed)


def execution_settings(settings: dict, jobs: int) -> dict:
    """The batch's settings with the device and the thread count resolved once, before any work is handed out,
    so every executor (in turn, a process pool, Ray) runs each transect the same way."""
    from reefmap.perception.networks import resolve_device

    return {**settings, "device": str(resolve_device(str(settings.get("device") or "auto"))),
            "threads": settings.get("threads") or max(1, (os.cpu_count() or 1) // max(1, jobs))}


def process_transect(transect: Transect, run_dir: Path, settings: dict, record: dict) -> str | None:
    """Process one transect; its `run_record` marks the run finished. The error line on failure, None on success
    (runs in a worker process)."""
    import reefmap

    try:
        if not transect.videos:
            raise UsageError("no video named in the manifest row")
        (run_dir / ROW_FILE).unlink(missing_ok=True)  # a run stopped half way must not pass for the old one
        reefmap.process(list(transect.videos), run_dir, quiet=True, **run_settings(transect, settings))
        write_text_atomic(run_dir / ROW_FILE, json.dumps(record, indent=1))
        return None
    except ReefmapError as exc:
        return " ".join(str(exc).split())
    except Exception as exc:  # one broken transect must not stop the survey
        return f"internal error ({type(exc).__name__}: {exc}) " + traceback.format_exc(limit=1).splitlines()[-1]


def run_batch(manifest: str | Path, out_dir: str | Path, jobs: int = 1, quiet: bool = False, ray: str | None = None,
              **settings) -> dict:
    """Process every transect of `manifest` into `out_dir/<site>_<transect>_<date>/`, skipping finished ones;
    write survey.csv, failures.csv and survey_report.html. Returns the batch summary.

    Transects run one after another (`jobs` 1), in a pool of `jobs` processes, or with `ray` ("local" or a
    cluster address) as Ray tasks. Device and threads are resolved once here (`threads` unless given: the cores
    shared among `jobs`), so every executor gives the same figures; each Ray task asks for those CPU threads and,
    on a CUDA device, one GPU. A transect whose finished run was made from other inputs, settings or weights is
    processed again (`reprocessed` in the summary says why). A worker that dies is that transect's failure.
    """
    transects = read_manifest(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = execution_settings(settings, jobs)
    weights = weights_record(settings)
    records = {t.name: run_record(t, settings, weights) for t in transects}
    states = {t.name: finished_state(out_dir / t.name, records[t.name]) for t in transects}
    todo = [t for t in transects if states[t.name] != "finished"]
    reprocessed = {name: state.removeprefix("changed: ") for name, state in states.items()
                   if state and state.startswith("changed")}
    for name, why in reprocessed.items():
        if not quiet:
            print(f"{name}: processing again, its finished run differs in {why}", file=sys.stderr)
    failures: dict[str, str] = {}
    with tqdm(total=len(transects), initial=len(transects) - len(todo), unit="transect", desc="survey",
              disable=quiet, file=sys.stderr) as bar:
        def finished(transect: Transect, error: str | None, running: int) -> None:
            if error:
                failures[transect.name] = error
            bar.update(1)
            bar.set_postfix(running=running, failed=len(failures))

        if ray is not None:
            results = _run_on_ray(todo, out_dir, settings, records, ray)
        elif jobs <= 1:
            results = ((t, process_transect(t, out_dir / t.name, settings, records[t.name]), int(k + 1 < len(todo)))
                       for k, t in enumerate(todo))
        else:
            results = _run_in_pool(todo, out_dir, settings, records, jobs)
        bar.set_postfix(running=min(len(todo), jobs if ray is None else len(todo)), failed=0)
        for transect, error, running in results:
            finished(transect, error, running)
    return write_survey(transects, out_dir, failures, settings, reprocessed)


def _run_in_pool(todo: list[Transect], out_dir: Path, settings: dict, records: dict[str, dict], jobs: int):
    """Yield (transect, error or None, transects still running) from a pool of `jobs` spawned processes."""
    pending: dict = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < jobs:
                transect = queue.pop(0)
                pending[pool.submit(process_transect, transect, out_dir / transect.name, settings,
                                    records[transect.name])] = transect
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                transect = pending.pop(future)
                yield transect, _result_or_crash(future.result), len(pending)


def _run_on_ray(todo: list[Transect], out_dir: Path, settings: dict, records: dict[str, dict], address: str):
    """Yield (transect, error or None) as Ray tasks finish, on a local Ray instance or the cluster at `address`."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'ray>=2.9' (or install reefmap with the 'ray' extra)") from None
    started = not ray.is_initialized()
    if started:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024 ** 2)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        gpus = 1 if settings["device"].startswith("cuda") else 0
        task = ray.remote(num_cpus=settings["threads"], num_gpus=gpus, max_retries=0)(process_transect)
        pending = {task.remote(t, out_dir / t.name, settings, records[t.name]): t for t in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                transect = pending.pop(ref)
                yield transect, _result_or_crash(lambda: ray.get(ref)), len(pending)
    finally:
        if started:
            ray.shutdown()


def _result_or_crash(result) -> str | None:
    """The worker's answer, or the reason it gave none (a process killed for memory, a lost cluster node)."""
    try:
        return result()
    except Exception as exc:
        return f"the worker processing this transect died ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); " \
               "run the batch again to retry it, with fewer --jobs if it ran out of memory"


def write_survey(transects: list[Transect], out_dir: Path, failures: dict[str, str], settings: dict,
                 reprocessed: dict[str, str]) -> dict:
    """survey.csv (each run's cover.csv and cover_groups.csv rows, verbatim, under the transect's columns),
    failures.csv and survey_report.html; the batch summary as a dict (also batch_summary.json) with the settings
    every transect ran with and the transects processed again because their inputs or settings changed."""
    from reefmap.report.survey import write_survey_report

    finished = [t for t in transects if t.name not in failures and (out_dir / t.name / "summary.json").exists()]
    with atomic_path(out_dir / "survey.csv") as partial, open(partial, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SURVEY_COLUMNS)
        for t in finished:
            units = load_summary(out_dir / t.name).units
            for level, name in (("group", "cover_groups.csv"), ("class", "cover.csv")):
                with open(out_dir / t.name / name, newline="") as table:
                    for r in csv.DictReader(table):
                        writer.writerow([t.row["site"], t.row["transect"], t.row.get("date", ""), t.row.get("depth_m", ""),
                                         level, *(r[c] for c in SURVEY_COLUMNS[5:16]), units])
    with atomic_path(out_dir / "failures.csv") as partial, open(partial, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FAILURE_COLUMNS)
        for t in transects:
            if t.name in failures:
                writer.writerow([t.row["site"], t.row["transect"], t.row.get("date", ""), failures[t.name]])
    summary = {"transects": len(transects), "finished": [t.name for t in finished],
               "failed": {name: error for name, error in failures.items()},
               "settings": {k: settings[k] for k in sorted(settings)}, "reprocessed": reprocessed}
    write_survey_report(finished, out_dir, failures)
    write_text_atomic(out_dir / "batch_summary.json", json.dumps(summary, indent=1))
    return summary
