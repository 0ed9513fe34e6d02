"""Errors raised by the models package.

Every error carries a machine-readable ``code`` so that the CLI can print one line and
exit with status 2, and the service can map it to a 4xx response.
"""


class ModelError(Exception):
    """A model, checkpoint or model input that cannot be used, with a stable error code."""

    code = "model_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


def one_line(error: BaseException) -> str:
    """An exception's text on one line (YAML's errors span several, with a caret under the problem)."""
    return " ".join(str(error).split()) or type(error).__name__


class CheckpointError(ModelError):
    """A weights file that is unreadable, unsafe, or does not fit the architecture."""

    code = "bad_checkpoint"


class UnknownModelError(ModelError):
    """A model name that the registry does not know."""

    code = "unknown_model"


class InputShapeError(ModelError):
    """Silhouettes whose shape or dtype breaks the silhouette-sequence contract."""

    code = "bad_silhouettes"
