"""The state record of a running instance, its name and where things live.

An instance is a name; everything ``up`` did to the host is written to
``/run/sfcframe/<name>.json`` as it happens (status ``starting`` until the
last step, then ``up``), so ``stats``, ``set``, ``list`` and ``down`` work from
any later process, and ``down`` can also clean up after an ``up`` that was
killed half-way. Maps and programs are pinned under
``/sys/fs/bpf/sfcframe/<name>/``. ``SFCFRAME_STATE_DIR`` and
``SFCFRAME_PIN_ROOT`` move both (the pin root must be on a bpffs).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from sfcframe.runtime.errors import ConfigError, InstanceError

SCHEMA = 1
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


def state_dir() -> Path:
    return Path(os.environ.get("SFCFRAME_STATE_DIR", "/run/sfcframe"))


def pin_root() -> Path:
    return Path(os.environ.get("SFCFRAME_PIN_ROOT", "/sys/fs/bpf/sfcframe"))


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"instance name {name!r}: use 1-32 letters, digits, '-' or '_' "
            "(it names a file and a bpffs directory)"
        )
    return name


def state_path(name: str) -> Path:
    return state_dir() / f"{name}.json"


def pin_dir(name: str) -> Path:
    return pin_root() / name


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One sfcframe changing the host at a time (up, down and set take it)."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class TcFilter:
    """One bpf filter ``up`` added: deleted by exactly these coordinates."""

    direction: str  # "egress" | "ingress"
    parent: int  # 0xFFFFFFF3 (egress) | 0xFFFFFFF2 (ingress)
    prio: int
    handle: int
    function: str
    prog_id: int


@dataclass
class IfaceState:
    name: str
    ifindex: int
    netns: str | None
    xdp_mode: str | None = None  # "native" | "generic" once attached
    xdp_prog_id: int | None = None
    clsact_created: bool = False
    filters: list[TcFilter] = field(default_factory=list)
    #: offload features ``up`` switched off: {ethtool feature name: previous value}
    offloads_changed: dict[str, str] = field(default_factory=dict)
    #: every offload feature looked at, as found before ``up`` changed anything
    offloads_seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IfaceState":
        data = dict(data)
        data["filters"] = [TcFilter(**f) for f in data.get("filters", [])]
        return cls(**data)


@dataclass
class Record:
    name: str
    netns: str | None
    spec: dict[str, Any]
    describe: str
    params: dict[str, str]  # the raw NAME=VALUE pairs the spec was resolved from
    ingress_outcomes: list[str]
    egress_outcomes: list[str]
    extra_counters: dict[str, list[str]]
    default_strict: bool
    xdp_mode_requested: str
    pin_dir: str
    maps: dict[str, str] = field(default_factory=dict)  # map name -> pinned path
    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    interfaces: list[IfaceState] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    status: str = "starting"
    started: float = field(default_factory=time.time)
    pid: int = field(default_factory=os.getpid)
    schema: int = SCHEMA

    @property
    def encap(self) -> str:
        return self.spec["encap"]["name"]

    @property
    def key(self) -> str:
        return self.spec["key"]["name"]

    @property
    def ingress_hook(self) -> str:
        """Hook of the ingress program: "xdp" or "tc" (core parameter ingress)."""
        return self.spec.get("core", {}).get("ingress", "xdp")

    @property
    def mode(self) -> str:
        """"cache" or "static" (core parameter mode)."""
        return self.spec.get("core", {}).get("mode", "cache")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        data = dict(data)
        data["interfaces"] = [IfaceState.from_dict(i) for i in data.get("interfaces", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self) -> None:
        """Write atomically: a reader sees the old record or the new one."""
        path = state_path(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            state_path(self.name).unlink()


def load(name: str) -> Record | None:
    path = state_path(check_name(name))
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return Record.from_dict(json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        raise InstanceError(f"{name}: state record {path} is unreadable ({exc})") from None


def require(name: str) -> Record:
    record = load(name)
    if record is None:
        raise InstanceError(f"{name}: no such instance (see `sfcframe list`)")
    return record


def all_records() -> list[Record]:
    directory = state_dir()
    if not directory.is_dir():
        return []
    records = []
    for path in sorted(directory.glob("*.json")):
        record = load(path.stem) if NAME_RE.fullmatch(path.stem) else None
        if record is not None:
            records.append(record)
    return records
