"""Starting, reading and stopping the proxy under test through sfcframe's
runtime (:mod:`sfcframe.runtime`: ``instance.up`` / ``stats.collect`` /
``instance.down``, what ``sfcframe up`` / ``stats --json`` / ``down`` run).
The demo never attaches or pins the proxy itself.

The runtime's ``up`` rolls back every step it did when it fails or is
interrupted; ``down`` is idempotent and works from the state record, so the
demo's teardown can always call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProxyStats:
    ingress: dict[str, int] = field(default_factory=dict)
    egress: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def get(self, direction: str, outcome: str) -> int:
        return int(getattr(self, direction).get(outcome, 0))


@dataclass
class RuntimeProxy:
    """One proxy instance, run by sfcframe's runtime."""

    name: str
    encap: str
    key: str
    ifaces: tuple[str, ...]
    netns: str
    params: dict[str, str] = field(default_factory=dict)
    cache_size: int | None = None
    xdp_mode: str = "auto"
    #: metadata stages, in order (``sfcframe up --stage``)
    stages: tuple[str, ...] = ()
    #: the stages' runtime settings, ``STAGE.SETTING=VALUE``, written after ``up`` as
    #: ``sfcframe set NAME STAGE.SETTING=VALUE ...`` writes them
    settings: tuple[str, ...] = ()
    is_up: bool = False
    record: Any = None

    def up(self) -> None:
        from sfcframe.runtime.config import UpRequest
        from sfcframe.runtime.instance import set_settings, up

        params = dict(self.params)  # typed values: the request validates them as they are
        if self.cache_size is not None:
            params["cache_size"] = self.cache_size
        request = UpRequest(
            name=self.name, encap=self.encap, key=self.key, interfaces=list(self.ifaces),
            netns=self.netns, params=params, xdp_mode=self.xdp_mode, stages=list(self.stages),
        )
        self.is_up = True  # whatever happens now, down() is attempted
        self.record = up(request)
        if self.settings:
            self.record = set_settings(self.name, list(self.settings))

    def stats(self) -> ProxyStats:
        """The runtime's ``stats --json`` document, read in-process from the pins."""
        from sfcframe.runtime import state
        from sfcframe.runtime.stats import collect

        doc = collect(state.require(self.name))
        counters = doc.get("counters", {})
        return ProxyStats(dict(counters.get("ingress", {})), dict(counters.get("egress", {})), doc)

    def down(self) -> str:
        """Detach and unpin; '' when done, else what the runtime could not undo."""
        from sfcframe.runtime.instance import down

        if not self.is_up:
            return ""
        report = down(self.name)
        if report.failures:
            return "; ".join(report.failures)
        self.is_up = False
        return ""

    def listed(self) -> bool | None:
        """Whether the runtime still knows the instance (state record or pins)."""
        from sfcframe.runtime import state

        return state.load(self.name) is not None or state.pin_dir(self.name).exists()


@dataclass
class NoProxy:
    """No VNF and no proxy: the stamper and the checker alone (self-test)."""

    name: str = "none"
    is_up: bool = False

    def up(self) -> None:
        pass

    def stats(self) -> ProxyStats:
        return ProxyStats()

    def down(self) -> str:
        return ""

    def listed(self) -> bool | None:
        return False


@dataclass
class NoopControl:
    """The control of ``sfcframe bench goodput``: no proxy, but no-op programs at the
    hooks the proxy would use on every interface (ingress at ``hook``: XDP native,
    XDP generic or TC; TC egress), and the merging offloads switched off as the
    runtime's ``up`` does. Everything goes with the namespace."""

    netns: str
    ifaces: tuple[str, ...]
    hook: str = "xdp-native"
    name: str = "control"
    is_up: bool = False
    attached: dict[str, str] = field(default_factory=dict)
    progs: Any = None

    def up(self) -> None:
        from sfcframe.demo.programs import NoopPrograms
        from sfcframe.runtime import offloads

        self.progs = NoopPrograms().load()
        self.is_up = True
        for ifname in self.ifaces:
            _seen, change = offloads.plan(self.netns, ifname, True)
            offloads.apply(self.netns, ifname, change)
            self.attached[ifname] = self.progs.attach(self.netns, ifname, self.hook)

    def stats(self) -> ProxyStats:
        return ProxyStats(raw={"control": {"hook": self.hook, "attached": dict(self.attached)}})

    def down(self) -> str:
        if self.progs is not None:
            self.progs.close()
            self.progs = None
        self.is_up = False
        return ""

    def listed(self) -> bool | None:
        return False
