"""Whether an instance can be used: its record and its pins, one instance at a time.

``list``, ``stats``, ``set`` and ``size --observe`` look at each instance on
its own: one whose record is unreadable, untrusted or invalid, whose pins were
removed, or whose pins have no record is ``damaged`` (with the reason), and
the others are reported as usual. ``sfcframe down NAME`` cleans up a damaged
instance (:mod:`.teardown`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sfcframe.runtime import state, undo
from sfcframe.runtime.errors import DamagedError, InstanceError
from sfcframe.runtime.state import Record


@dataclass
class Instance:
    name: str
    record: Record | None
    problem: str | None = None  # None: usable

    @property
    def damaged(self) -> bool:
        return self.problem is not None


def missing_pins(record: Record) -> list[str]:
    """Pins the record names that are not there (paths derived from the name)."""
    paths = [*record.maps.values(), *(p["pin"] for p in record.programs.values())]
    return [os.path.relpath(p, record.pin_dir) for p in paths if not os.path.lexists(p)]


def inspect(name: str) -> Instance | None:
    """The instance ``name``; None if there is nothing of it (no record, no pins)."""
    pins = state.pin_dir(name)
    try:
        record = state.load(name)
    except DamagedError as exc:
        return Instance(name, None, str(exc).removeprefix(f"{name}: "))
    if record is None:
        if not os.path.lexists(pins):
            return None
        copy = "its undo copy is there" if undo.read(pins) else "no undo copy"
        return Instance(name, None, f"no state record ({state.state_path(name)}) for the pins "
                        f"at {pins} ({copy})")
    missing = missing_pins(record)
    if missing:
        return Instance(name, record, f"pins missing at {pins}: {', '.join(missing)}")
    return Instance(name, record)


def scan() -> list[Instance]:
    """Every instance that has a record or pins, in name order."""
    names = sorted(set(state.record_names()) | set(state.pinned_names()))
    found = (inspect(name) for name in names)
    return [i for i in found if i is not None]


def require(name: str) -> Record:
    """A usable instance's record; InstanceError (no such) or DamagedError (with why)."""
    state.check_name(name)
    instance = inspect(name)
    if instance is None:
        raise InstanceError(f"{name}: no such instance (see `sfcframe list`)")
    if instance.damaged:
        raise DamagedError(
            f"{name}: damaged: {instance.problem}; `sfcframe down {name}` cleans it up")
    return instance.record
