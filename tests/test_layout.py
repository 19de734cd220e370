"""The package tree reads as the data flow: stages import only the stages below them, and the root holds only the
entry points and what every stage shares."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "reefmap"

# Lower ranks are imported by higher ones, never the other way round (docs/architecture.md draws the same).
RANK = {
    "errors": 0, "taxonomy": 1, "config": 1, "runtime": 1,
    "geometry": 2, "io": 3, "models": 4, "mapping": 4,
    "perception": 5, "synthetic": 5, "report": 6, "train": 7, "run": 7, "viewer": 8,
    "api": 9, "cli": 10, "__main__": 11, "__init__": 11,
}
ROOT_MODULES = {"__init__", "__main__", "api", "cli", "config", "errors", "taxonomy"}


def _unit(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def test_root_keeps_only_entry_points_and_shared_modules():
    assert {p.stem for p in PACKAGE.glob("*.py")} == ROOT_MODULES


def test_every_package_is_ranked():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(RANK), packages - set(RANK)


def test_imports_only_go_down_the_stages():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        here = _unit(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "reefmap":
                parts = node.module.split(".")
                target = parts[1] if len(parts) > 1 else "__init__"
                if target == "__init__" and [a.name for a in node.names] == ["__version__"]:
                    continue  # the version number every stage may record
                if target != here and RANK[target] >= RANK[here] and not (here == "__init__" and target == "api"):
                    upward.append(f"{path.relative_to(PACKAGE)} imports {node.module}")
    assert not upward, upward


def test_the_cli_calls_only_the_api():
    """The CLI is thin over the Python API: it reaches no stage package directly."""
    allowed = {"reefmap", "reefmap.api", "reefmap.config", "reefmap.errors"}
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module and node.module.startswith("reefmap")}
    assert imported <= allowed, imported - allowed
