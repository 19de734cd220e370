"""`python -m reefmap` runs the command line."""

from reefmap.cli import run

run()
