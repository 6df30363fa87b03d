"""The state record of a running instance, its name and where things live.

An instance is a name; everything ``up`` did to the host is written to
``/run/sfcframe/<name>.json`` as it happens (status ``starting`` until the
last step, then ``up``), so ``stats``, ``set``, ``list`` and ``down`` work from
any later process, and ``down`` can also clean up after an ``up`` that was
killed half-way. Maps and programs are pinned under
``/sys/fs/bpf/sfcframe/<name>/``. ``SFCFRAME_STATE_DIR`` and
``SFCFRAME_PIN_ROOT`` move both (the pin root must be on a bpffs).

Every path is derived from the validated instance name: a record's own
``pin_dir``, ``maps`` and program ``pin`` fields are informational and are
replaced on load. Records are written 0600 into a 0700 directory and read
with ``O_NOFOLLOW``; one that root does not own alone, or whose content is
not valid (:mod:`.validate`), is refused as damaged (:mod:`.trust`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from sfcframe.files import replace_file
from sfcframe.runtime import trust, validate
from sfcframe.runtime.errors import ConfigError, DamagedError, InstanceError

SCHEMA = 1
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
#: a state record is a few KB; anything far larger is not one
MAX_RECORD_BYTES = 1 << 20


def state_dir() -> Path:
    return Path(os.environ.get("SFCFRAME_STATE_DIR", "/run/sfcframe"))


def pin_root() -> Path:
    return Path(os.environ.get("SFCFRAME_PIN_ROOT", "/sys/fs/bpf/sfcframe"))


def valid_name(name: Any) -> bool:
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def check_name(name: str) -> str:
    if not valid_name(name):
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
    directory = trust.private_dir(state_dir())
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(directory / ".lock", flags, trust.FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


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
class Footprint:
    """What ``up`` did to the host, as much as ``down`` needs to undo it: the
    record's part that is also kept in the undo copy next to the pins."""

    name: str
    netns: str | None
    netns_ino: int | None
    interfaces: list[IfaceState]

    def as_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "name": self.name, "netns": self.netns,
                "netns_ino": self.netns_ino, "interfaces": [asdict(i) for i in self.interfaces]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str) -> "Footprint":
        problems = validate.footprint_problems(data, name)
        if problems:
            raise DamagedError(f"{name}: undo copy is invalid ({'; '.join(problems[:3])})")
        try:
            interfaces = [IfaceState.from_dict(i) for i in data.get("interfaces", [])]
        except TypeError as exc:
            raise DamagedError(f"{name}: undo copy is invalid ({exc})") from None
        return cls(name, data.get("netns"), data.get("netns_ino"), interfaces)


@dataclass
class Record:
    name: str
    netns: str | None
    spec: dict[str, Any]
    describe: str
    #: the NAME=VALUE pairs the spec was resolved from, typed as given (a record
    #: written by an older version holds them as text); the build is ``spec``
    params: dict[str, Any]
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
    #: inode of the network namespace at ``up`` (a re-created namespace has another)
    netns_ino: int | None = None
    #: the stages' log2 histogram maps: {map name: what they count}
    histograms: dict[str, str] = field(default_factory=dict)
    #: the stages' labelled counters: {hash map name: {"stage", "counter", "label",
    #: "max_labels", "what"}} (the overflow array is "<name>_other")
    labelled_counters: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: cache=assoc: {"key_size", "value_size"} of an entry (struct sfc_key, struct
    #: sfc_value), which the map's own sizes (bucket index, bucket) do not tell
    cache_entry: dict[str, int] = field(default_factory=dict)

    @property
    def encap(self) -> str:
        return self.spec["encap"]["name"]

    @property
    def key(self) -> str:
        return self.spec["key"]["name"]

    @property
    def stages(self) -> list[str]:
        """The build's stages, in order."""
        return [st["name"] for st in self.spec.get("stages", [])]

    @property
    def ingress_hook(self) -> str:
        """Hook of the ingress program: "xdp" or "tc" (core parameter ingress)."""
        return self.spec.get("core", {}).get("ingress", "xdp")

    @property
    def mode(self) -> str:
        """"cache" or "static" (core parameter mode)."""
        return self.spec.get("core", {}).get("mode", "cache")

    def resolved_spec(self):
        """The build this instance runs (:class:`sfcframe.spec.ResolvedSpec`), from
        the typed values of its ``spec``; InstanceError naming the reason if the
        installed plugins no longer accept them (e.g. a record of another version)."""
        from sfcframe.errors import ParamError, PluginError
        from sfcframe.spec import spec_from_dict

        try:
            return spec_from_dict(self.spec)
        except (ParamError, PluginError) as exc:
            raise InstanceError(
                f"{self.name}: its recorded build no longer resolves with the installed "
                f"plugins ({exc}); `sfcframe down {self.name}` and up it again") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def footprint(self) -> Footprint:
        return Footprint(self.name, self.netns, self.netns_ino, self.interfaces)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        data = dict(data)
        data["interfaces"] = [IfaceState.from_dict(i) for i in data.get("interfaces", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def derive_paths(self) -> "Record":
        """Every path from the name, whatever the record said."""
        pins = pin_dir(self.name)
        self.pin_dir = str(pins)
        self.maps = {m: str(pins / "maps" / m) for m in self.maps}
        for function, prog in self.programs.items():
            prog["pin"] = str(pins / "progs" / function)
        return self

    def save(self) -> None:
        """Write atomically (a reader sees the old record or the new one), mode
        0600; then the undo copy next to the pins, once they exist."""
        from sfcframe.runtime import undo

        text = json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n"
        replace_file(trust.private_dir(state_dir()), f"{self.name}.json", text.encode(),
                     trust.FILE_MODE)
        undo.write(pin_dir(self.name), self.footprint().as_dict())

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            state_path(self.name).unlink()


def _read_record_file(path: Path) -> bytes | None:
    """The record's bytes; None if there is none; TrustError if others could have written it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            trust.check_file(path, os.lstat(path))
        raise
    with os.fdopen(fd, "rb") as handle:
        trust.check_file(path, os.fstat(handle.fileno()))
        return handle.read(MAX_RECORD_BYTES + 1)


def load(name: str) -> Record | None:
    """The instance's record; None if it has none. DamagedError if it is not
    usable (TrustError: not root's alone; else unreadable or invalid)."""
    path = state_path(check_name(name))
    raw = _read_record_file(path)
    if raw is None:
        return None
    if len(raw) > MAX_RECORD_BYTES:
        raise DamagedError(f"{name}: state record {path} is larger than {MAX_RECORD_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise DamagedError(f"{name}: state record {path} is not valid JSON ({exc})") from None
    problems = validate.record_problems(data, name)
    if problems:
        raise DamagedError(
            f"{name}: state record {path} is invalid ({'; '.join(problems[:3])})")
    try:
        return Record.from_dict(data).derive_paths()
    except (TypeError, KeyError, AttributeError) as exc:
        raise DamagedError(f"{name}: state record {path} is incomplete ({exc})") from None


def require(name: str) -> Record:
    record = load(name)
    if record is None:
        raise InstanceError(f"{name}: no such instance (see `sfcframe list`)")
    return record


def record_names() -> list[str]:
    """Names of every state record in the state directory."""
    directory = state_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if valid_name(p.stem))


def pinned_names() -> list[str]:
    """Names of every instance directory under the pin root."""
    root = pin_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if valid_name(p.name))


def all_records() -> list[Record]:
    """Every usable record (damaged ones are left out: see :mod:`.health`)."""
    records = []
    for name in record_names():
        with contextlib.suppress(DamagedError):
            record = load(name)
            if record is not None:
                records.append(record)
    return records
