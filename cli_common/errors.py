"""Errors in the inputs of the command line and the benchmarks (files, options), with a machine-readable code."""


class CliInputError(Exception):
    """A command-line input that cannot be used: missing file, wrong array, conflicting options."""

    def __init__(self, message: str, code: str = "bad_input") -> None:
        super().__init__(message)
        self.code = code
