"""Typed errors raised at sfcframe's boundaries.

The CLI turns each of them into one line on stderr and a non-zero exit code;
only ``--debug`` shows a traceback.
"""

from __future__ import annotations


class SfcError(Exception):
    """Base class: a failure the user can act on, with a one-line message."""

    exit_code = 2

    def one_line(self) -> str:
        return f"{type(self).__name__}: {self}"


class UsageError(SfcError):
    """A malformed command line or spec."""


class PluginError(SfcError):
    """A plugin is unknown, failed to import or broke its contract."""


class ParamError(SfcError):
    """A plugin or core parameter is unknown or out of range."""


class RenderError(SfcError):
    """A template could not be rendered."""


class KernelFeatureError(SfcError):
    """The running kernel or the process lacks something sfcframe needs."""


class CompileError(SfcError):
    """bcc/clang could not compile the generated C."""

    exit_code = 1

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class VerifierError(SfcError):
    """The kernel verifier rejected a generated program; ``log`` holds its log."""

    exit_code = 1

    def __init__(self, program: str, message: str, log: str) -> None:
        super().__init__(f"verifier rejected {program}: {message}")
        self.program = program
        self.log = log
