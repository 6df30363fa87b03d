"""A demo testbed that stays up across many traffic runs (``sfcframe bench goodput``).

``sfcframe demo`` builds, measures once and tears down. A benchmark sweeping
label depths and repeating runs reuses what does not change instead: one
:class:`Testbed` is the demo's topology (sender - SFF - VNF host with a
forwarding VNF - receiver) with one proxy started through the runtime, or the
no-op control (:class:`~sfcframe.demo.proxy.NoopControl`); the stamper and
checker (:class:`Stamps`, compiled once per label depth and shared by every
testbed) are swapped per measurement; :meth:`Testbed.measure` runs iperf3 once
and returns counter deltas, CPU time and interface packet counts of that
traffic window only::

    stamps = Stamps("mpls")
    with Testbed(kind="proxy", key="tcpip", hook="xdp-native") as tb:
        tb.use(stamps.get(10), after_proxy=True)
        sample = tb.measure(seconds=5)

Only one testbed may carry traffic at a time (the stamps' counters and settings
are shared: :meth:`measure` takes deltas and sets the settings first).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sfcframe import discovery
from sfcframe.demo import programs, traffic
from sfcframe.demo.proxy import NoopControl, RuntimeProxy
from sfcframe.demo.teardown import teardown
from sfcframe.demo.topology import Topology, link_stats, sh
from sfcframe.errors import UsageError

#: ingress hook -> runtime xdp_mode (the TC hook is a build parameter instead)
XDP_MODES = {"xdp-native": "native", "xdp-generic": "generic"}
GRACE = 15
MIN_PACKETS = 10_000
#: /proc/stat "cpu" columns
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times() -> dict[str, float]:
    """Seconds of every CPU together, per /proc/stat column."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        first = f.readline().split()
    return {name: int(v) / tick for name, v in zip(STAT_FIELDS, first[1:])}



def _delta(after: dict, before: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


@dataclass
class Stamps:
    """The demo's stamper + checker, compiled once per (label depth, pop), shared."""

    encap: str = "mpls"
    compiled: dict[tuple, programs.DemoPrograms] = field(default_factory=dict)

    def get(self, labels: int, pop: int = 1) -> programs.DemoPrograms:
        if (labels, pop) not in self.compiled:
            plugin = discovery.load("encap", self.encap).plugin
            d = programs.demo_options(plugin, labels=labels, md_type=1,
                                      proxy_params={"pop": pop, "max_labels": max(labels, 1)},
                                      chains=[programs.Chain(1, "10.77.2.2")])
            self.compiled[(labels, pop)] = programs.DemoPrograms(programs.render(plugin, d), 1).load()
        return self.compiled[(labels, pop)]

    def close(self) -> None:
        for progs in self.compiled.values():
            progs.close()
        self.compiled.clear()


@dataclass
class Testbed:
    """Topology + forwarding VNF + one proxy (``kind="proxy"``) or the no-op control."""

    kind: str = "proxy"  # proxy | control
    encap: str = "mpls"
    key: str = "tcpip"
    hook: str = "xdp-native"
    params: dict[str, str] = field(default_factory=dict)
    cache_size: int | None = None
    streams: int = 2
    tag: str = field(default_factory=lambda: "g" + secrets.token_hex(3))
    topo: Topology | None = None
    proxy: Any = None
    current: programs.DemoPrograms | None = None
    started: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("proxy", "control"):
            raise UsageError(f"testbed kind {self.kind!r}: proxy or control")
        if self.hook not in programs.HOOKS:
            raise UsageError(f"hook {self.hook!r}: one of {', '.join(programs.HOOKS)}")
        self.topo = Topology(chains=1, vnf=True, tag=self.tag)
        netns = f"{self.topo.prefix}-vnf"
        if self.kind == "control":
            self.proxy = NoopControl(netns=netns, ifaces=self.topo.vnf_ifaces, hook=self.hook)
        else:
            params = dict(self.params)
            mode = XDP_MODES.get(self.hook, "auto")
            if self.hook == "tc":
                params["ingress"] = "tc"
            self.proxy = RuntimeProxy(
                name=self.topo.prefix, encap=self.encap, key=self.key, ifaces=self.topo.vnf_ifaces,
                netns=netns, params=params, cache_size=self.cache_size, xdp_mode=mode,
            )

    # ---- life cycle ------------------------------------------------------------------
    def start(self) -> "Testbed":
        """Namespaces, then the proxy or the no-op programs (a forwarding VNF is ip_forward)."""
        if self.kind == "proxy":
            from sfcframe.spec import resolve_spec

            raw = dict(self.proxy.params)
            if self.cache_size is not None:
                raw["cache_size"] = str(self.cache_size)
            resolve_spec(self.encap, self.key, raw)  # validate before anything is created
        self.started = True
        self.topo.create()
        self.proxy.up()
        return self

    def close(self) -> dict[str, Any]:
        """Tear everything down (also after a failed start); the demo's teardown report."""
        self.current = None
        return teardown(self.topo, self.proxy, None, None)

    def __enter__(self) -> "Testbed":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "hook": self.hook, "namespaces": f"{self.topo.prefix}-*"}
        if self.kind == "proxy":
            rec = self.proxy.record
            out.update(key=self.key, params=dict(self.proxy.params),
                       spec=getattr(rec, "describe", None),
                       xdp_modes={i.name: i.xdp_mode for i in getattr(rec, "interfaces", [])})
        else:
            out["attached"] = dict(self.proxy.attached)
        return out

    # ---- stamper and checker -------------------------------------------------------------
    def use(self, progs: programs.DemoPrograms) -> None:
        """Attach these stamper and checker programs (replacing the previous ones)."""
        if progs is self.current:
            return
        topo = self.topo
        if self.current is not None:
            programs.DemoPrograms.detach_stamper(topo.ns("sff"), topo.sff_iface)
            programs.DemoPrograms.detach_checker(topo.ns("sff"), topo.sff_iface)
            programs.DemoPrograms.detach_checker(topo.ns("rcv"), topo.rcv_iface)
            self.current = None
        progs.attach_stamper(topo.ns("sff"), topo.sff_iface)
        # the way back: in every row, so every row has the same programs in the path
        progs.attach_decap(topo.ns("sff"), topo.sff_iface)
        progs.attach_checker(topo.ns("rcv"), topo.rcv_iface)
        self.current = progs

    # ---- one traffic run -------------------------------------------------------------------
    def _counters(self) -> dict[str, Any]:
        progs = self.current
        out: dict[str, Any] = {"sff": progs.sff_counters(), "checker": progs.checker_counters(1),
                               "unchained": progs.checker_counters(0),
                               "decap": progs.decap_counters()}
        try:
            stats = self.proxy.stats()
            out["ingress"], out["egress"] = dict(stats.ingress), dict(stats.egress)
        except Exception as exc:  # noqa: BLE001 - the traffic numbers stand without them
            out["ingress"], out["egress"] = {}, {}
            out["stats_error"] = f"{type(exc).__name__}: {exc}"
        return out

    def _links(self) -> dict[str, dict[str, int]]:
        t = self.topo
        return {"vnf_in": link_stats(t.ns("vnf"), t.vnf_ifaces[0]),
                "vnf_out": link_stats(t.ns("vnf"), t.vnf_ifaces[1]),
                "sff_down": link_stats(t.ns("sff"), t.sff_iface)}

    def measure(self, seconds: float, *, after_proxy: bool = True, constant: bool = False,
                grace: float = GRACE) -> dict[str, Any]:
        """One iperf3 run; deltas over it. ``after_proxy``/``constant``: what the checker
        expects; ``grace``: how long iperf3 may run past ``seconds`` before it is stopped."""
        if self.current is None:
            raise UsageError("Testbed.measure: no stamper attached (use() first)")
        self.current.set_after_proxy(after_proxy, constant)
        c0 = self._counters()
        streams = traffic.plan(self.topo, self.streams)
        traffic.start(self.topo, streams, seconds)
        # the traffic window: from the clients' start to their end
        l0, t0, w0 = self._links(), cpu_times(), time.monotonic()
        deadline = w0 + seconds + grace
        while traffic.running(streams):
            if time.monotonic() > deadline:
                traffic.stop(streams, f"no end {grace:g} s after the test time")
                break
            time.sleep(0.02)
        t1, w1, l1 = cpu_times(), time.monotonic(), self._links()
        traffic.collect(streams)
        time.sleep(0.1)  # the last segments and ACKs
        c1 = self._counters()
        cpu = _delta(t1, t0)
        links = {k: _delta(l1[k], l0[k]) for k in l1}
        window = w1 - w0
        checker = _delta(c1["checker"], c0["checker"])
        unchained = _delta(c1["unchained"], c0["unchained"])
        ingress, egress = _delta(c1["ingress"], c0["ingress"]), _delta(c1["egress"], c0["egress"])
        packets = links["vnf_in"]["rx_packets"]
        kernel_s = cpu["system"] + cpu["softirq"]
        return {
            "goodput_mbps": round(sum(s.bits_per_second for s in streams) / 1e6, 1),
            "retransmits": sum(s.retransmits for s in streams),
            "window_s": round(window, 3),
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "kernel_cpu_s": round(kernel_s, 2),
            "busy_fraction": round(1 - (cpu["idle"] + cpu["iowait"]) / max(sum(cpu.values()), 1e-9), 3),
            "packets": packets,
            # below MIN_PACKETS (a stalled run) the ratio is noise, not a cost
            "cpu_s_per_mpkt": round(kernel_s / (packets / 1e6), 3) if packets >= MIN_PACKETS else None,
            "links": links,
            "sff": _delta(c1["sff"], c0["sff"]),
            "checker": checker,
            "mismatches": checker.get("mismatch", 0) + checker.get("malformed", 0)
            + unchained.get("malformed", 0),
            "unencapsulated": checker.get("unencapsulated", 0),
            "sff_decap": _delta(c1["decap"], c0["decap"]),
            "proxy": {"ingress": {k: v for k, v in ingress.items() if v},
                      "egress": {k: v for k, v in egress.items() if v}},
            "proxy_handled": sum(ingress.values()) if ingress else None,
            "egress_misses": egress.get("not_cached", 0),
            **({"proxy_stats_error": c1["stats_error"]} if "stats_error" in c1 else {}),
            "stream_errors": [f"{s.sender}->{s.receiver}:{s.port}: {s.error}" for s in streams if s.error],
        }
