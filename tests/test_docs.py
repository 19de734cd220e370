"""Every `reefmap` command in the bash blocks of docs/ is one the CLI takes as written (command, options and values
parse), and (in `make test-all`) the synthetic-reef walk-through of docs/synthetic.md runs end to end on a short
transect.

The README's commands are run in full by tests/test_readme.py; most docs commands repeat them with other names.
Commands here are parsed, not run, where running needs what a test cannot have (a Ray cluster, hours of training,
the reference system's checkpoint).
"""

import json
import re
import shlex
from pathlib import Path

import click
import pytest

from test_process import run_cli

from reefmap.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs"


def docs_commands(name: str = "*.md") -> list[tuple[str, str]]:
    """(file name, command) for each `reefmap ...` command of the docs' bash blocks: comments stripped,
    continuation lines joined."""
    commands = []
    for path in sorted(DOCS.glob(name)):
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("reefmap "):
                    commands.append((path.name, line))
    return commands


def parse(command: str) -> click.Context:
    """The click context `reefmap` builds for `command` (raises click's usage errors)."""
    args = shlex.split(command)[1:]
    group = main
    while isinstance(group, click.Group):
        name, args = args[0], args[1:]
        group = group.commands[name]
    return group.make_context(name, args)


def test_docs_have_commands():
    files = {name for name, _ in docs_commands()}
    assert {"how-it-works.md", "synthetic.md", "training.md"} <= files


@pytest.mark.parametrize("command", [c for _, c in docs_commands()])
def test_every_docs_command_parses(command):
    context = parse(command)
    assert context.command.callback is not None


@pytest.mark.slow
def test_the_synthetic_walk_through_runs(tmp_path, monkeypatch, capsys):
    """docs/synthetic.md's commands in order, on a 2 m transect instead of 20 m (slow: SfM on it; the same steps
    run on shorter input in test_process.py and test_sfm.py)."""
    monkeypatch.chdir(tmp_path)
    commands = [c for _, c in docs_commands("synthetic.md")]
    assert commands[0].startswith("reefmap synth ")
    for command in commands:
        args = shlex.split(command.replace("--length-m 20", "--length-m 2 --fps 5"))[1:]
        code, _, err = run_cli(monkeypatch, capsys, *args)
        assert code == 0, f"{command}\n{err}"
    evaluations = sorted(tmp_path.glob("runs/*/evaluation.json"))
    assert len(evaluations) == sum(c.startswith("reefmap evaluate") for c in commands) >= 2
    oracle = json.loads((tmp_path / "runs" / "oracle1" / "evaluation.json").read_text())
    assert oracle["cover"]["max_abs_error_pts"] < 1.0  # true depth, labels and poses give the true cover
