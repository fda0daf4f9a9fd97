"""Domain errors of the evaluator.

``JudgeInputError`` and its subclasses mean "this request is bad" (map to INVALID_ARGUMENT /
FAILED_PRECONDITION); they are raised before any model work for that request. ``CheckpointError`` means the
judge itself cannot be built.
"""

from __future__ import annotations


class JudgeError(Exception):
    """Root of all evaluator errors."""


class JudgeInputError(JudgeError, ValueError):
    """A request the judge cannot score as given."""


class UnknownTaskError(JudgeInputError):
    """The task is not one of the supported judge tasks."""


class UnsupportedTaskError(UnknownTaskError):
    """A known task that the loaded judge model was not trained for."""


class EmptyTextError(JudgeInputError):
    """A caption or rule that is empty or only whitespace."""


class UnsupportedPromptError(JudgeInputError):
    """Text the official prompt path cannot handle (e.g. a literal ``<image>`` media token)."""


class VideoNotFoundError(JudgeInputError):
    """The video path does not exist or is not a file."""


class VideoDecodeError(JudgeInputError):
    """The video exists but cannot be decoded (corrupt, truncated, not a video)."""


class EmptyVideoError(JudgeInputError):
    """The video decodes but has no frames."""


class JudgeEndpointError(JudgeError):
    """The model endpoint of a judge over an API failed for one video: it refused the request
    (``transient`` False: asking again gets the same answer) or kept failing after its retries."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class CheckpointError(JudgeError):
    """A checkpoint directory or repo that is missing files, keys or has a bad layout."""
