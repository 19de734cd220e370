"""Make trained weights the shipped default in weights/, with a card that says how to reproduce them.

    python tools/bench_models.py synth/heldout_101 synth/heldout_102 --seg /work/train/seg.safetensors --json bench.json
    python tools/ship_weights.py /work/train/seg.safetensors --data-root /work/data --held-out bench.json \\
        --runs "2026-12-03: one run of 2800 iterations at 448 px on 26 transects from the shipped weights"

The card written beside weights/<task>.safetensors is the training card with
- paths relative to --data-root (the folder training ran from: `synth/train_1`), the start weights as
  `weights/<task>.safetensors` and the output as `<task>.safetensors`, in the settings and the command;
- `training.data_commands`: the `reefmap synth` command of every training folder, from the shipped card or
  --data-command (refused when one is unknown);
- `training.initialised_from_weights`: the shipped weights it started from (hash, command, held-out figures)
  and, under `earlier`, theirs;
- `training.code`: the commit of the training code; `training.runs`: --runs;
- `metrics.held_out`: the figures of `tools/bench_models.py --json` for this file, with the held-out folders'
  render commands;
- `credits`: --credit, one line for each dataset or pretrained file the weights were made from.
Labelled photo folders (CoralNet exports) need no render command; they may lie outside --data-root and are
kept as paths relative to it. Training must have started from the shipped weights, from scratch or from the
packaged ImageNet encoder (`training.encoder_start`): anything else breaks the chain.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHAIN_FIELDS = ("sha256", "input_size", "normalisation", "command", "iterations", "kind")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trained", type=Path, help="weights written by `reefmap train` (card beside them)")
    parser.add_argument("--data-root", type=Path, required=True, help="the folder training and the benchmark ran from")
    parser.add_argument("--held-out", type=Path, required=True, help="`tools/bench_models.py --json` of these weights")
    parser.add_argument("--runs", required=True, help="one line on the run(s): when, how long, on what, from what")
    parser.add_argument("--data-command", action="append", default=[],
                        help="`reefmap synth --out FOLDER ...` for a folder the shipped card does not list (repeatable)")
    parser.add_argument("--credit", action="append", default=[],
                        help="credit and licence of a dataset or pretrained file used (repeatable)")
    parser.add_argument("--code-commit", help="commit of the training code that made the file (default: HEAD)")
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "weights")
    args = parser.parse_args()
    try:
        ship(args)
    except ValueError as error:
        sys.exit(f"error: {error}")


def ship(args) -> None:
    from reefmap.models.weights import sha256_file
    from reefmap.io.points import is_point_folder

    card = json.loads(args.trained.with_suffix(".json").read_text())
    task = card["task"]
    target = args.weights_dir / f"{task}.safetensors"
    shipped = json.loads(target.with_suffix(".json").read_text()) if target.exists() else None
    root = args.data_root.resolve()
    training = card["training"]
    settings = training["settings"]
    photos = {folder for folder in settings["data"] if is_point_folder(_absolute(folder, root))}
    data = [os.path.relpath(_absolute(folder, root), root) if folder in photos else _relative(folder, root)
            for folder in settings["data"]]
    rendered = [d for folder, d in zip(settings["data"], data) if folder not in photos]
    renames = {str(Path(settings["out"]).resolve()): target.name, **{str(_absolute(d, root)): d for d in data}}
    start = training.get("initialised_from")
    if start:
        started_from = training.get("initialised_from_sha256") or sha256_file(_absolute(start, root))
        if shipped is None or started_from != shipped["sha256"]:
            raise ValueError(f"training started from {start}, not from the shipped {target}: ship that first, "
                             "or train again from the shipped weights")
        renames[str(_absolute(start, root))] = f"weights/{target.name}"
    settings["data"] = data
    settings["out"] = target.name
    if start:
        settings["init"] = training["initialised_from"] = f"weights/{target.name}"
    training["command"] = _relative_command(training["command"], renames, root)
    known = _commands_by_folder((shipped or {}).get("training", {}).get("data_commands", [])
                                + (shipped or {}).get("metrics", {}).get("held_out", {}).get("data_commands", [])
                                + args.data_command)
    training["data_commands"] = _commands_for(rendered, known)
    if start:
        training["initialised_from_weights"] = _chain_link(shipped, task)
    commit = args.code_commit or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip()
    training["code"] = {"commit": commit, "note": f"reefmap train {task.replace('_', '-')} as of this commit"}
    training["runs"] = args.runs
    card["metrics"]["held_out"] = _held_out(args.held_out, task, args.trained, root, known)
    if args.credit:
        card["credits"] = args.credit
    card.pop("sha256", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.trained, target)
    os.chmod(target, 0o644)
    card["sha256"] = sha256_file(target)
    target.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"shipped {args.trained} as {target} (sha256 {card['sha256'][:12]}); held-out "
          + ", ".join(f"{k} {v:.4f}" for k, v in card["metrics"]["held_out"].items() if isinstance(v, float)))


def _chain_link(shipped: dict, task: str) -> dict:
    """What the card keeps of the shipped weights training started from: how they were made, how they scored,
    and (under `earlier`) what they started from."""
    recorded = {**shipped["training"], **shipped}
    link = {k: recorded[k] for k in CHAIN_FIELDS if k in recorded}
    held_out = shipped.get("metrics", {}).get("held_out", {})
    if task == "segmentation":
        link["held_out_at_640"] = {k: held_out[k] for k in ("pixel_accuracy", "miou") if k in held_out}
    else:
        link["held_out"] = {k: v for k, v in held_out.items() if isinstance(v, float)}
    if "initialised_from_weights" in shipped["training"]:
        link["earlier"] = shipped["training"]["initialised_from_weights"]
    return link


def _absolute(path: str, root: Path) -> Path:
    """`path` resolved, relative ones against `root` (joining keeps an absolute path as it is)."""
    return (root / path).resolve()


def _relative(path: str, root: Path) -> str:
    absolute = _absolute(path, root)
    if not absolute.is_relative_to(root):
        raise ValueError(f"{path} is not under the data root {root}: pass the folder training ran from")
    return str(absolute.relative_to(root))


def _relative_command(command: str, renames: dict[str, str], root: Path) -> str:
    """The training command with its paths renamed and its --log (a local file) left out."""
    words, out = shlex.split(command), []
    words[0] = Path(words[0]).name
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--log":
            skip = True
        else:
            absolute = str(_absolute(word, root)) if not word.startswith("-") else word
            out.append(renames.get(absolute, word))
    return " ".join(out)


def _commands_by_folder(commands: list[str]) -> dict[str, str]:
    """`reefmap synth` commands by their --out folder."""
    found = {}
    for command in commands:
        words = shlex.split(command)
        if "--out" not in words:
            raise ValueError(f"data command '{command}' has no --out FOLDER")
        found[words[words.index("--out") + 1].rstrip("/")] = command
    return found


def _commands_for(folders: list[str], known: dict[str, str]) -> list[str]:
    missing = [f for f in folders if f not in known]
    if missing:
        raise ValueError(f"no render command known for {', '.join(missing)}: pass --data-command "
                         f"'reefmap synth --out {missing[0]} --seed ...' for each")
    return [known[f] for f in folders]


def _held_out(bench_json: Path, task: str, trained: Path, root: Path, known: dict[str, str]) -> dict:
    """The benchmark's figures for `task`, checked to be those of the `trained` file."""
    bench = json.loads(bench_json.read_text())
    section = dict(bench[task])  # bench_models.py writes one section per task, named as the task
    scored = Path(section.pop("weights")).resolve()
    if scored != trained.resolve():
        raise ValueError(f"{bench_json} scored {scored}, not {trained}: run tools/bench_models.py with "
                         f"--{'seg' if task == 'segmentation' else 'depth'} {trained}")
    folders = [_relative(d, root) for d in bench["data"]]
    return {"data_commands": _commands_for(folders, known),
            "command": "python tools/bench_models.py " + " ".join(folders), **section}


if __name__ == "__main__":
    main()
