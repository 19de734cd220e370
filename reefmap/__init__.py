"""reefmap: underwater transect video to a labelled 3D reef map and benthic cover."""

__version__ = "0.1.0"

from reefmap.api import ProcessResult, process

__all__ = ["ProcessResult", "process", "__version__"]
