"""reefmap: underwater transect video to a labelled 3D reef map and benthic cover."""

__version__ = "0.1.0"

from reefmap.api import ProcessResult, evaluate, process, synth

__all__ = ["ProcessResult", "evaluate", "process", "synth", "__version__"]
