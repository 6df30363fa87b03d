"""One run of ``sfcframe demo --encap srv6``: the SRv6 kernel-peer testbed
(:mod:`sfcframe.demo.srv6_topology`) with real TCP, every SRv6 packet checked
at the decapsulating node, everything torn down on the way out.

    from sfcframe.demo.run import DemoConfig, run_demo
    summary = run_demo(DemoConfig(encap="srv6", inner="ipv6", hmac=True, sf="end", seconds=3))

What owns SID_PROXY on the VNF host (``cfg.sf``): ``end``, the kernel's
``seg6local End`` (no VNF, no proxy: the kernel-only chain); ``proxy``,
sfcframe's ``srv6`` encapsulation plugin started through the runtime on
``in0``/``out0`` with ``sid=SID_PROXY`` around a forwarding VNF; ``auto``, the
proxy when an ``srv6`` encapsulation plugin is installed, else ``end``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from importlib import metadata
from typing import Any, Callable

from sfcframe.demo import ioam_stage, srv6_ioam, srv6_plan
from sfcframe.demo.proxy import NoProxy, RuntimeProxy
from sfcframe.demo.snapshot import proxy_snapshot
from sfcframe.demo.config import DemoConfig, Progress
from sfcframe.demo.drive import drive_traffic
from sfcframe.demo.srv6_programs import MISMATCH_KINDS, Srv6Programs
from sfcframe.demo.srv6_report import Srv6Summary, checker_view
from sfcframe.demo.srv6_topology import Srv6Topology
from sfcframe.demo.teardown import teardown
from sfcframe.demo.testbed import cpu_times
from sfcframe.demo.vnfs import Vnf
from sfcframe.errors import PluginError, UsageError

#: VNFs the SRv6 testbed runs behind the proxy (the TUN delay program handles IPv4 only)
SRV6_VNFS = ("forward", "drop", "nat")


def plugin_installed() -> bool:
    """Whether an encapsulation plugin named ``srv6`` is registered."""
    return bool(metadata.entry_points(group="sfcframe.encaps", name="srv6"))


def resolve_sf(sf: str) -> str:
    if sf == "auto":
        return "proxy" if plugin_installed() else "end"
    return sf


def srv6_key(cfg: DemoConfig) -> str:
    """``auto``: metadata behind NAT, else tcpip for IPv4 inner packets; metadata for
    IPv6 (``--key tcpip`` keys inner IPv6 with ``family=ipv6``, see :func:`proxy_params`)."""
    if cfg.key != "auto":
        return cfg.key
    if cfg.vnf == "nat":
        return "metadata"
    return "tcpip" if cfg.inner == "ipv4" else "metadata"


def proxy_spec(cfg: DemoConfig, key: str):
    """The proxy's resolved build for this run (ParamError / PluginError if invalid)."""
    from sfcframe.spec import resolve_spec

    raw = proxy_params(cfg)
    if cfg.cache_size is not None:
        raw["cache_size"] = str(cfg.cache_size)
    return resolve_spec("srv6", key, raw, tuple(cfg.stages))


def covers_inner(cfg: DemoConfig, key: str) -> bool:
    """Whether the key of this run covers its inner packets (else they would be no_key)."""
    spec = proxy_spec(cfg, key)
    wanted = 0x0800 if cfg.inner == "ipv4" else 0x86DD
    return wanted in spec.key.plugin.inner_ethertypes(spec.key_params)


def proxy_params(cfg: DemoConfig) -> dict[str, str]:
    """The proxy's parameters; the tcpip key gets ``family=ipv6`` for inner IPv6
    (it keys IPv4 unless told); with IOAM, ``max_ext_bytes`` is the inserted
    Hop-by-Hop header's length (the proxy caches it with the outer headers).
    ``cfg.params`` (``--param``) win."""
    params = {"sid": srv6_plan.SID_PROXY, "ingress": cfg.ingress}
    if srv6_key(cfg) == "tcpip" and cfg.inner == "ipv6":
        params["family"] = "ipv6"
    ioam = srv6_ioam.options_of(cfg)
    if ioam is not None:
        params["max_ext_bytes"] = str(ioam.hbh_len)
    params.update(cfg.params)
    return params


def run_srv6_demo(cfg: DemoConfig, progress: Progress | None = None,
                  say: Callable[[str], None] = lambda line: None) -> Srv6Summary:
    sf = resolve_sf(cfg.sf)
    options = srv6_plan.Srv6Options(inner=cfg.inner, hmac=cfg.hmac, sf=sf,
                                    hop_limit=cfg.hop_limit, corrupt=cfg.corrupt,
                                    nat=cfg.vnf == "nat", ioam=srv6_ioam.options_of(cfg, sf))
    with_proxy = options.sf == "proxy"
    if cfg.stages and not with_proxy:
        raise UsageError(f"--stage {' '.join(cfg.stages)}: stages run in sfcframe's proxy; the "
                         "kernel's End stand-in (--sf end) has none")
    key = srv6_key(cfg)
    spec = None
    if with_proxy:
        if cfg.vnf not in SRV6_VNFS:
            raise UsageError(f"--encap srv6 runs behind a {' or '.join(SRV6_VNFS)} VNF, not {cfg.vnf!r}")
        try:
            spec = proxy_spec(cfg, key)  # validates everything before any change
        except PluginError as exc:
            if plugin_installed():
                raise
            raise PluginError(f"{exc}; `--sf end` runs the testbed with the kernel's End in the "
                              "proxy's place") from None
    topo = Srv6Topology(options=options, tag=cfg.tag or secrets.token_hex(3))
    say(f"sfcframe demo: srv6 with the kernel as peer, {options.describe()}; compiling the "
        "stamper and the checker ...")
    summary = Srv6Summary(config=_config_dict(cfg, options, key, spec, topo))
    owner = os.getpid()
    progs = None
    vnf = Vnf(cfg.vnf) if with_proxy else None
    settings = (ioam_stage.setting_assignments(ioam_stage.vnf_settings(options.ioam.namespace))
                if ioam_stage.wanted(cfg.stages) else [])
    proxy = (RuntimeProxy(name=topo.prefix, encap="srv6", key=key, ifaces=topo.vnf_ifaces,
                          netns=f"{topo.prefix}-vnf", params=proxy_params(cfg),
                          cache_size=cfg.cache_size, stages=tuple(cfg.stages),
                          settings=tuple(settings))
             if with_proxy else NoProxy())
    try:
        # 1. the stamper and the checker (compiled before anything is created)
        progs = Srv6Programs().load()
        progs.configure(options)
        # 2. namespaces with the kernel's SRv6, the VNF and the proxy, neighbours resolved
        topo.create()
        say(f"namespaces {', '.join(topo.namespaces.values())}; SID_PROXY {srv6_plan.SID_PROXY}: "
            + (f"proxy on {' and '.join(topo.vnf_ifaces)} in {topo.ns('vnf')}, VNF {vnf.describe()}"
               if with_proxy else "the kernel's End (stand-in)"))
        if vnf is not None:
            vnf.setup(topo)
        proxy.up()
        topo.warm_up()
        # 3. stamper and checker attached after the warm-up: their counters cover the traffic
        progs.attach_stamper(topo.ns("sff"), topo.sff_iface)
        progs.attach_checker(topo.ns(topo.checker_role), topo.checker_iface)
        kernel0, rcv0, cpu0 = topo.kernel_counters(), topo.snmp("rcv"), cpu_times()
        dropped0 = topo.downstream_drops()
        # 4. traffic, a progress line per second
        streams = drive_traffic(topo, cfg, lambda started: _snapshot(started, progs, proxy, with_proxy),
                                progress)
        cpu1 = cpu_times()
        if vnf is not None:
            vnf.stop()
        # 5. numbers
        kernel1, rcv1 = topo.kernel_counters(), topo.snmp("rcv")
        per_cpu = progs.checker_per_cpu()
        sample = progs.last_mismatch()
        summary.fill(
            sff=progs.stamper_counters(), checkers=[checker_view(per_cpu)], unchained={},
            mismatch_samples=[sample] if sample else [], proxy=proxy.stats(), streams=streams,
            vnf=vnf.counters(topo) if vnf is not None else {}, vnf_kind=cfg.vnf,
        )
        summary.fields = {k: sum(per_cpu[k]) for k in MISMATCH_KINDS}
        summary.kernel = {name: {k: kernel1[name][k] - kernel0[name][k] for k in kernel1[name]}
                          for name in kernel1}
        summary.receiver_tcp_in = rcv1.get("TcpInSegs", 0) - rcv0.get("TcpInSegs", 0)
        summary.cpu = {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1}
        summary.downstream_dropped = topo.downstream_drops() - dropped0
        summary.ioam = progs.ioam_view() if options.ioam else {}
        if ioam_stage.wanted(cfg.stages):
            vnf_slot = summary.ioam["vnf_slot"]
            summary.dwell = ioam_stage.dwell_view(
                {"count": vnf_slot["delay_available"], "mean_ns": vnf_slot["delay_mean_ns"],
                 "min_ns": vnf_slot["delay_min_ns"], "max_ns": vnf_slot["delay_max_ns"]},
                summary.proxy_raw)
    finally:
        if os.getpid() != owner:
            os._exit(1)  # a forked helper that unwound into this frame (see run_demo)
        summary.teardown = teardown(topo, proxy, vnf, progs)
    return summary


def _snapshot(started: float, progs: Srv6Programs, proxy, with_proxy: bool) -> dict[str, Any]:
    snap: dict[str, Any] = {"elapsed": round(time.monotonic() - started)}
    with contextlib.suppress(Exception):  # last stage first, as in snapshot.chain_snapshot
        counts = progs.checker_counters()
        snap["match"] = counts["match"]
        snap["mismatch"] = sum(counts[k] for k in MISMATCH_KINDS)
    snap = proxy_snapshot(snap, proxy) if with_proxy else snap
    with contextlib.suppress(Exception):
        stamps = progs.stamper_counters()
        snap["stamped"] = stamps["stamped"] + stamps["corrupted"]
    return snap


def _config_dict(cfg: DemoConfig, options: srv6_plan.Srv6Options, key: str, spec,
                 topo: Srv6Topology) -> dict[str, Any]:
    segs = ",".join(reversed(options.segments))
    node = "proxy + VNF" if options.sf == "proxy" else "End"
    egress = "End.DX4" if options.inner == "ipv4" else "End.DT6"
    return {
        "encap": "srv6",
        "labels": None,
        "md_type": None,
        "key": key if spec is not None else None,
        "vnf": cfg.vnf if spec is not None else "none",
        "seconds": cfg.seconds,
        "streams": cfg.streams,
        "chains": 1,
        "proxy_spec": spec.describe() if spec is not None else None,
        "ingress_hook": spec.ingress_hook if spec is not None else None,
        "namespaces": f"{topo.prefix}-*",
        "proxy_name": topo.prefix if spec is not None else None,
        "stages": list(cfg.stages) if spec is not None else [],
        "srv6": {
            "inner": options.inner, "hmac": options.hmac, "sf": options.sf,
            "corrupt": options.corrupt, "hop_limit": options.expected_hop_limit,
            "sid_proxy": srv6_plan.SID_PROXY, "egress_sid": options.egress_sid,
            "tunsrc": srv6_plan.TUNSRC, "describe": options.describe(),
            "path": (f"snd {options.sender} -> sff H.Encaps segs {segs}"
                     f"{' hmac ' + str(srv6_plan.HMAC_KEYID) if options.hmac else ''}"
                     f"{' + IOAM trace -> t1' if options.ioam else ''} -> vnf {node}"
                     f"{' -> t2' if options.ioam else ''} -> dec {egress} (checker) -> rcv {options.receiver}"),
            "ioam": options.ioam.describe(options.sf) if options.ioam else None,
        },
    }
