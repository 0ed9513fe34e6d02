"""Typed pipeline errors, each with a stable machine-readable ``code``.

The CLI prints them as one line and exits with status 2; the service maps them to 4xx answers.
"""


class PipelineError(Exception):
    """Input the pipeline cannot process, with a stable error code."""

    code = "pipeline_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class VideoNotFoundError(PipelineError):
    code = "video_not_found"


class VideoUnreadableError(PipelineError):
    """Not a video, no video stream, or not a single decodable frame."""

    code = "video_unreadable"


class VideoTooLongError(PipelineError):
    code = "video_too_long"


class VideoTooLargeError(PipelineError):
    code = "video_too_large"


class SourceUnreachableError(PipelineError):
    """A URL or stream that refused the connection or did not answer in time."""

    code = "source_unreachable"


class BadOptionError(PipelineError):
    code = "bad_option"
