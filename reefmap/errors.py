"""Errors a user can hit: each message says what went wrong and what to do."""


class ReefmapError(Exception):
    """A problem with the user's input or environment; `exit_code` 1 (runtime) or 2 (usage)."""

    exit_code = 1


class UsageError(ReefmapError):
    """Wrong arguments: the command line asks for something impossible."""

    exit_code = 2


class VideoError(ReefmapError):
    """A video file is missing, unreadable or empty."""


class WeightsError(ReefmapError):
    """A weights file or its card is missing, corrupt or for another model."""


class OutputError(ReefmapError):
    """The output folder cannot be written."""


class EmptyMapError(ReefmapError):
    """Nothing could be mapped from the frames (all water, no depth)."""
