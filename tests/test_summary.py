"""summary.json is one typed record, and each run's warnings are its own."""

import json
import threading
from dataclasses import fields

import pytest

from reefmap.errors import UsageError
from reefmap.io.video import prefetch
from reefmap.report.summary import RunSummary, load_summary
from reefmap.runtime.notices import collect_notices, warn


def _record() -> dict:
    return {f.name: None for f in fields(RunSummary)}


def test_a_renamed_or_missing_key_is_an_error_naming_it(tmp_path):
    record = _record()
    (tmp_path / "summary.json").write_text(json.dumps(record))
    assert load_summary(tmp_path).units is None
    record["unit"] = record.pop("units")
    (tmp_path / "summary.json").write_text(json.dumps(record))
    with pytest.raises(UsageError, match=r"lacks units and has unknown unit"):
        load_summary(tmp_path)


def test_a_folder_without_a_readable_summary_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no summary.json"):
        load_summary(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot be read"):
        load_summary(tmp_path)


def test_each_runs_warnings_stay_its_own_across_threads():
    collected, ready = {}, threading.Barrier(2)

    def one_run(name):
        with collect_notices() as notices:
            ready.wait()  # both runs collect at the same time
            warn(f"warning of {name}")
            list(prefetch(iter([None])))
            collected[name] = list(notices)

    threads = [threading.Thread(target=one_run, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert collected == {"a": ["warning of a"], "b": ["warning of b"]}


def test_warnings_from_the_decoder_thread_reach_the_run():
    def frames():
        warn("the video ends early")
        yield None

    with collect_notices() as notices:
        list(prefetch(frames()))
    assert notices == ["the video ends early"]


def test_outside_a_run_a_notice_is_a_python_warning():
    with pytest.warns(UserWarning, match="plain"):
        warn("plain")


def test_the_record_says_how_many_frames_each_method_placed():
    import numpy as np

    from reefmap.config import ProcessConfig
    from reefmap.run.summary import mapping_line, mapping_record
    from reefmap.run.trajectory import CameraPath

    path = CameraPath(np.tile(np.eye(4), (10, 1, 1)), [], {"method": "sfm", "registered_keyframes": 4})
    record = mapping_record(ProcessConfig(mapping="auto"), path, 10)
    assert record["frames_placed"] == {"structure_from_motion": 4, "pose_network": 6}
    assert "structure from motion placed 4 keyframes" in mapping_line(record)
    fallback = mapping_record(ProcessConfig(mapping="auto"), None, 10)
    assert fallback["frames_placed"] == {"pose_network": 10} and "failed" in mapping_line(fallback)
    assert mapping_record(ProcessConfig(oracle="x"), None, 3)["frames_placed"] == {"truth": 3}
