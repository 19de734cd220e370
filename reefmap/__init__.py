"""reefmap: underwater transect video to a labelled 3D reef map and benthic cover."""

__version__ = "0.1.0"

__all__ = ["ProcessResult", "batch", "compare", "evaluate", "install_weights", "process", "report", "synth",
           "__version__"]


def __getattr__(name: str):
    """The API is imported on first use, so `reefmap --help` and argument errors answer without loading torch."""
    if name in ("ProcessResult", "batch", "compare", "evaluate", "install_weights", "process", "report", "synth"):
        from reefmap import api

        return getattr(api, name)
    raise AttributeError(f"module 'reefmap' has no attribute {name!r}")
