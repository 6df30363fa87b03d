"""The demo's own BPF programs: the SFF stamper and the receiver's checker.

Both come from one compilation unit (``bpf_templates/demo.c.j2``, which
includes the encapsulation-agnostic ``demo_sff.c.j2`` and ``demo_checker.c.j2``)
filled by the encapsulation's demo template (:attr:`EncapPlugin.demo_template`),
compiled once with bcc and attached with pyroute2 inside the demo's
namespaces; the stamper and every checker share the settings and the chain
table. They are the traffic source's and sink's side of the test, not the
proxy: the proxy is started through :mod:`sfcframe.demo.proxy` (the runtime).

The machinery here (entering a namespace, the templates' environment, bcc
compilation with the verifier's log, TC attachment) also serves the SRv6
kernel-peer testbed's programs (:mod:`sfcframe.demo.srv6_programs`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Mapping

import jinja2

from sfcframe import __version__
from sfcframe.errors import CompileError, PluginError, RenderError, VerifierError

SFF_OUTCOMES = ("stamped", "empty", "other", "too_big", "error")
CHECKER_OUTCOMES = ("match", "mismatch", "unencapsulated", "malformed", "other")

TC_EGRESS = "ffff:fff3"
TC_INGRESS = "ffff:fff2"


@contextlib.contextmanager
def in_netns(netns: str) -> Iterator[None]:
    """Run the body with this thread inside /run/netns/<netns>'s network namespace
    (:func:`sfcframe.runtime.netns.entered`: pyroute2's setns, and back on the way
    out). No helper process is forked: a forked helper would inherit the demo's
    signal handlers and could unwind through its cleanup on Ctrl-C. Sockets
    created in the body stay bound to that namespace after it ends.
    """
    from sfcframe.runtime.netns import entered

    with entered(netns):
        yield


@contextlib.contextmanager
def netns_iproute(netns: str) -> Iterator[Any]:
    """A pyroute2 IPRoute socket opened inside /run/netns/<netns> (see :func:`in_netns`;
    a netlink socket stays bound to the namespace it was made in)."""
    from pyroute2 import IPRoute

    with in_netns(netns):
        ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def template_env(encap_plugin: Any = None) -> jinja2.Environment:
    """The demo programs' Jinja2 environment: ``core/`` is bpf_templates, ``encap/``
    the encapsulation plugin's template directory (when one is given)."""
    core_dir = Path(str(resources.files("sfcframe.bpf_templates")))
    loaders = {"core": jinja2.FileSystemLoader(core_dir)}
    if encap_plugin is not None:
        loaders["encap"] = jinja2.FileSystemLoader(encap_plugin.template_dir())
    return jinja2.Environment(
        loader=jinja2.PrefixLoader(loaders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def compile_programs(what: str, source: str, functions: Mapping[str, str]) -> tuple[Any, dict[str, int]]:
    """Compile ``source`` with bcc and load each function (name -> bcc program type
    attribute, e.g. ``"SCHED_CLS"``); returns the BPF object and the program fds.
    clang's or the verifier's log goes into the CompileError / VerifierError."""
    from sfcframe.loader import _capture_fd2, bcc_module

    bcc = bcc_module()
    try:
        with _capture_fd2() as log:
            bpf = bcc.BPF(text=source.encode())
    except Exception as exc:  # noqa: BLE001 - bcc raises bare Exception
        raise CompileError(f"{what}: {exc}", log="".join(log)) from None
    fds = {}
    for function, prog_type in functions.items():
        try:
            with _capture_fd2() as log:
                fn = bpf.load_func(function.encode(), getattr(bcc.BPF, prog_type))
        except Exception as exc:  # noqa: BLE001
            with contextlib.suppress(Exception):
                bpf.cleanup()
            raise VerifierError(function, str(exc).strip() or "rejected", "".join(log)) from None
        fds[function] = fn.fd
    return bpf, fds


def attach_tc(netns: str, ifname: str, fd: int, name: str, parent: str) -> None:
    """A direct-action bpf filter (handle 1, prio 1) on clsact ``parent`` of ifname."""
    with netns_iproute(netns) as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        with contextlib.suppress(Exception):
            ipr.tc("add", "clsact", index=index)
        ipr.tc(
            "add-filter", "bpf", index=index, handle=":1", fd=fd,
            name=name, parent=parent, classid=1, direct_action=True, prio=1,
        )


def detach_tc(netns: str, ifname: str, parent: str) -> None:
    """Remove attach_tc's filter from ifname (nothing there: nothing done)."""
    with netns_iproute(netns) as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        with contextlib.suppress(Exception):
            ipr.tc("del-filter", "bpf", index=index, handle=":1", parent=parent, prio=1)


@dataclass(frozen=True)
class Chain:
    """One service chain of the demo: its number and its receiver's address."""

    id: int
    address: str

    @property
    def daddr(self) -> int:
        return int(ipaddress.IPv4Address(self.address))


def demo_options(
    encap_plugin: Any,
    *,
    labels: int,
    md_type: int,
    proxy_params: Mapping[str, Any],
    chains: list[Chain],
    ioam: Any = None,
) -> SimpleNamespace:
    """What the templates see as ``d``. ``ioam``: the IOAM trace to stamp behind the
    encapsulation (:class:`sfcframe.demo.ioam_trace.TracePlan`; None: none), for an
    encapsulation whose demo template carries one (``d.ioam``, its ``template()``)."""
    return SimpleNamespace(
        labels=labels,
        md_type=md_type,
        proxy=SimpleNamespace(**proxy_params),
        chains=list(chains),
        ioam=ioam.template() if ioam is not None else None,
    )


def render(encap_plugin: Any, d: SimpleNamespace) -> str:
    """C of the demo programs (stamper and checker) for one encapsulation."""
    if not encap_plugin.demo_template:
        raise PluginError(
            f"encap plugin {encap_plugin.name!r} has no demo template (EncapPlugin.demo_template)"
        )
    env = template_env(encap_plugin)
    describe = (
        f"labels={d.labels} md_type={d.md_type} chains={len(d.chains)} "
        f"proxy({','.join(f'{k}={v}' for k, v in sorted(vars(d.proxy).items()))})"
    )
    if getattr(d, "ioam", None):
        describe += (f" ioam(trace_type=0x{d.ioam['trace_type']:06x},slots={d.ioam['slots']},"
                     f"proxy={'yes' if d.ioam['proxy'] else 'no'})")
    try:
        return env.get_template("core/demo.c.j2").render(
            version=__version__, encap=encap_plugin, d=d, describe=describe
        )
    except jinja2.TemplateError as exc:
        raise RenderError(f"demo programs for encap {encap_plugin.name}: {exc}") from exc


def range_names(encap_plugin: Any, d: SimpleNamespace) -> list[str]:
    """The names of the header words the checker checks by range (the encapsulation's
    demo template's ``range_names(d)`` macro, in demo_ranges() order; none without it)."""
    module = template_env(encap_plugin).get_template(f"encap/{encap_plugin.demo_template}").module
    macro = getattr(module, "range_names", None)
    return str(macro(d)).split() if macro is not None else []


@dataclass
class DemoPrograms:
    """The compiled stamper and checker; attach each where it belongs. ``ranges``:
    the names of the words checked by range (:func:`range_names`)."""

    source: str
    nchains: int
    bpf: Any = None
    fds: dict[str, int] = field(default_factory=dict)
    ranges: list[str] = field(default_factory=list)

    def load(self) -> "DemoPrograms":
        self.bpf, self.fds = compile_programs(
            "demo programs", self.source,
            {"demo_stamp": "SCHED_CLS", "demo_check": "XDP", "demo_decap": "XDP"},
        )
        return self

    def set_after_proxy(self, after: bool, constant: bool = False, protocols: int = 0) -> None:
        """What the checker expects: the header as stamped, or after the proxy's update rule;
        ``constant``: the stamper stamps (and the checker expects) one header per chain,
        derived from a constant instead of each packet's hash (a static proxy's case);
        ``protocols``: the inner protocols stamped and checked (``flowtraffic.PROTOCOLS``
        bits; 0: TCP alone)."""
        table = self.bpf.get_table(b"demo_settings")
        value = table.Leaf()
        value.after_proxy = 1 if after else 0
        value.constant = 1 if constant else 0
        value.protocols = protocols
        # POSIX time minus the monotonic clock (bpf_ktime_get_ns), as the ioam stage's
        # clock offset is measured: timestamps checked by range are converted with it
        value.clock_offset_ns = time.time_ns() - time.monotonic_ns()
        table[table.Key(0)] = value

    def attach_stamper(self, netns: str, ifname: str) -> None:
        """TC clsact egress, direct action, on ifname inside netns."""
        attach_tc(netns, ifname, self.fds["demo_stamp"], "demo_stamp", TC_EGRESS)

    def attach_checker(self, netns: str, ifname: str) -> None:
        """Native XDP on ifname inside netns."""
        with netns_iproute(netns) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.link("set", index=index, xdp_fd=self.fds["demo_check"])

    def attach_decap(self, netns: str, ifname: str) -> None:
        """Native XDP on ifname inside netns: strip the encapsulation off frames coming
        back (a static proxy pushes its header in both directions)."""
        with netns_iproute(netns) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.link("set", index=index, xdp_fd=self.fds["demo_decap"])

    def decap_counters(self) -> dict[str, int]:
        table = self.bpf.get_table(b"demo_decap_counters")
        return {name: int(sum(table[table.Key(i)]))
                for i, name in enumerate(("stripped", "passed", "failed"))}

    @staticmethod
    def detach_stamper(netns: str, ifname: str) -> None:
        """Remove the stamper's filter (attach_stamper's coordinates) from ifname."""
        detach_tc(netns, ifname, TC_EGRESS)

    @staticmethod
    def detach_checker(netns: str, ifname: str) -> None:
        with netns_iproute(netns) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.link("set", index=index, xdp_fd=-1)

    # ---- counters --------------------------------------------------------
    def sff_counters(self) -> dict[str, int]:
        table = self.bpf.get_table(b"demo_sff_counters")
        return {name: int(sum(table[table.Key(i)])) for i, name in enumerate(SFF_OUTCOMES)}

    def checker_per_cpu(self, chain: int) -> dict[str, list[int]]:
        """One chain's checker outcomes, per CPU (chain 0: frames of no chain)."""
        table = self.bpf.get_table(b"demo_checker_counters")
        base = chain * len(CHECKER_OUTCOMES)
        return {
            name: [int(x) for x in table[table.Key(base + i)]]
            for i, name in enumerate(CHECKER_OUTCOMES)
        }

    def checker_counters(self, chain: int) -> dict[str, int]:
        return {k: sum(v) for k, v in self.checker_per_cpu(chain).items()}

    def last_mismatch(self) -> dict[str, Any] | None:
        table = self.bpf.get_table(b"demo_last_mismatch")
        s = table[table.Key(0)]
        if not s.seen:
            return None
        got = bytes(s.got)[: min(s.got_len, len(s.got))]
        exp = bytes(s.exp)[: s.exp_len]
        out = {"count": int(s.seen), "h": f"0x{s.h:08x}", "got": got.hex(" ", 4),
               "expected": exp.hex(" ", 4)}
        if self.ranges:
            out["out_of_range"] = [n for i, n in enumerate(self.ranges) if s.range_out & (1 << i)]
        return out

    def last_match(self) -> dict[str, Any] | None:
        """With ranged words: the newest header the checker sampled among those that
        matched (``header``, bytes; ``h``; ``seen``: matches on that CPU)."""
        if not self.ranges:
            return None
        table = self.bpf.get_table(b"demo_last_match")
        cpus = [c for c in table[table.Key(0)] if c.seen]
        if not cpus:
            return None
        newest = max(cpus, key=lambda c: c.ktime)
        return {"h": f"0x{newest.h:08x}", "seen": int(newest.seen),
                "header": bytes(newest.got)[: min(newest.got_len, len(newest.got))]}

    def range_stats(self) -> dict[str, dict[str, int | float | None]]:
        """Per ranged word (by name), over all CPUs: ``count`` (packets whose other words
        matched), ``out`` (of them out of range), ``sum``, ``min``, ``max``, ``mean``."""
        if not self.ranges:
            return {}
        table = self.bpf.get_table(b"demo_range_stats")
        out = {}
        for i, name in enumerate(self.ranges):
            cpus = [c for c in table[table.Key(i)] if c.count]
            count = sum(c.count for c in cpus)
            total = sum(c.sum for c in cpus)
            out[name] = {"count": count, "out": sum(c.out for c in cpus), "sum": total,
                         "min": min((c.min for c in cpus), default=None),
                         "max": max((c.max for c in cpus), default=None),
                         "mean": total / count if count else None}
        return out

    def close(self) -> None:
        """Release the programs; their attachments go with the demo's namespaces."""
        if self.bpf is not None:
            with contextlib.suppress(Exception):
                self.bpf.cleanup()
            self.bpf = None


# ---- the control of `sfcframe bench goodput`: no-op programs at a proxy's hooks ----------

#: ingress hooks: XDP native, XDP generic, TC clsact ingress
HOOKS = ("xdp-native", "xdp-generic", "tc")
NOOP_PRIO = 0x5FC0  # the runtime's filter coordinates, so the same filter chain length
NOOP_HANDLE = 0x5FC


@dataclass
class NoopPrograms:
    """A no-op ingress program (XDP or TC) and a no-op TC egress program, attached
    on interfaces the way the runtime attaches a proxy (``bpf_templates/demo_noop.c.j2``)."""

    bpf: Any = None
    fds: dict[str, int] = field(default_factory=dict)

    def load(self) -> "NoopPrograms":
        from sfcframe.loader import _capture_fd2, bcc_module

        core_dir = Path(str(resources.files("sfcframe.bpf_templates")))
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(core_dir),
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        source = env.get_template("demo_noop.c.j2").render(version=__version__)
        bcc = bcc_module()
        try:
            with _capture_fd2() as log:
                self.bpf = bcc.BPF(text=source.encode())
                self.fds["demo_noop_xdp"] = self.bpf.load_func(b"demo_noop_xdp", bcc.BPF.XDP).fd
                self.fds["demo_noop_tc"] = self.bpf.load_func(b"demo_noop_tc", bcc.BPF.SCHED_CLS).fd
        except Exception as exc:  # noqa: BLE001 - bcc raises bare Exception
            self.close()
            raise CompileError(f"no-op programs: {exc}", log="".join(log)) from None
        return self

    def attach(self, netns: str, ifname: str, hook: str) -> str:
        """TC egress no-op, then the ingress no-op at ``hook``; returns how it is attached."""
        from sfcframe.runtime import attach

        if hook not in HOOKS:
            raise ValueError(f"unknown hook {hook!r}")
        with netns_iproute(netns) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            with contextlib.suppress(Exception):
                ipr.tc("add", "clsact", index=index)
            parents = [TC_EGRESS] + ([TC_INGRESS] if hook == "tc" else [])
            for parent in parents:
                ipr.tc("add-filter", "bpf", index=index, handle=NOOP_HANDLE,
                       fd=self.fds["demo_noop_tc"], name="demo_noop_tc", parent=parent,
                       classid=1, direct_action=True, prio=NOOP_PRIO)
            if hook == "tc":
                return "tc"
            mode = hook.split("-", 1)[1]
            return attach.attach_xdp(ipr, index, ifname, netns, self.fds["demo_noop_xdp"], mode)

    def close(self) -> None:
        if self.bpf is not None:
            with contextlib.suppress(Exception):
                self.bpf.cleanup()
            self.bpf = None
