"""Errors of the runtime; the CLI prints each as one line."""

from __future__ import annotations

from sfcframe.errors import SfcError, UsageError


class ConfigError(UsageError):
    """A malformed or inconsistent ``up`` request (flags or TOML file); exit code 2."""


class InstanceError(SfcError):
    """An instance name that exists already (``up``) or does not exist (``stats``, ``set``)."""

    exit_code = 1


class DamagedError(InstanceError):
    """An instance whose state record or pins are unusable (unreadable, invalid, missing)."""


class TrustError(DamagedError):
    """A state file or directory someone other than root could have written: not used."""


class AttachError(SfcError):
    """An interface, namespace or hook that cannot be used; nothing is left behind."""

    exit_code = 1


class OffloadError(AttachError):
    """An interface setting under which per-packet restoration would be wrong."""
