"""One demo run: build the topology, start the proxy through the runtime, push
real TCP through it, check every packet at the receiver, tear everything down.

    from sfcframe.demo.run import DemoConfig, run_demo
    summary = run_demo(DemoConfig(encap="mpls", labels=10, vnf="forward", seconds=3))
    summary.passed, summary.as_dict()

Everything created is removed on the way out (``finally``), also on errors
and on KeyboardInterrupt; the CLI turns SIGTERM into KeyboardInterrupt.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from sfcframe import discovery
from sfcframe.demo import ioam_stage, ioam_trace, programs
from sfcframe.demo.config import DemoConfig, Progress
from sfcframe.demo.drive import drive_traffic
from sfcframe.demo.proxy import NoProxy, RuntimeProxy
from sfcframe.demo.report import Summary
from sfcframe.demo.snapshot import chain_snapshot
from sfcframe.demo.teardown import teardown
from sfcframe.demo.topology import VETH_MTU, Topology
from sfcframe.demo.vnfs import AUTO_KEY, Vnf
from sfcframe.errors import PluginError, UsageError

__all__ = ["DemoConfig", "run_demo"]


def _proxy_params(cfg: DemoConfig, encap_plugin, trace: ioam_trace.TracePlan | None = None) -> dict[str, str]:
    params = dict(cfg.params)
    params.setdefault("ingress", cfg.ingress)
    # a stamped stack deeper than the proxy parses would be too_deep: parse what we stamp
    names = {p.name: p for p in encap_plugin.params}
    if "max_labels" in names and "max_labels" not in params and cfg.labels > names["max_labels"].default:
        params["max_labels"] = str(cfg.labels)
    # an IOAM trace is cached with the encapsulation (NSH: the IOAM header behind it)
    if trace is not None and "max_ioam_bytes" in names and "max_ioam_bytes" not in params:
        params["max_ioam_bytes"] = str(trace.header_len)
    return params


def run_demo(
    cfg: DemoConfig,
    progress: Progress | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Summary:
    from sfcframe.spec import resolve_spec

    if cfg.encap == "srv6":
        from sfcframe.demo.srv6_run import run_srv6_demo

        return run_srv6_demo(cfg, progress, say)
    key = cfg.resolved_key()
    if cfg.vnf not in (*AUTO_KEY, "none"):
        raise UsageError(f"unknown VNF {cfg.vnf!r} (known: {', '.join(AUTO_KEY)})")
    if cfg.labels < 0 or cfg.labels > 32:
        raise UsageError("--labels must be within 0..32")
    if cfg.md_type not in (1, 2):
        raise UsageError("--md-type must be 1 or 2")
    from sfcframe.demo.flowtraffic import TRAFFIC, protocol_mask

    if cfg.traffic not in TRAFFIC:
        raise UsageError(f"unknown traffic {cfg.traffic!r} (known: {', '.join(TRAFFIC)})")
    if cfg.traffic != "tcp" and cfg.chains != 1:
        raise UsageError("--traffic other than tcp runs with one chain")
    encap_plugin = discovery.load("encap", cfg.encap).plugin
    if not encap_plugin.demo_template:
        raise PluginError(
            f"encap {cfg.encap} has no demo (its plugin sets no EncapPlugin.demo_template)"
        )
    stage = ioam_stage.wanted(cfg.stages)
    trace = ioam_trace.plan_of(cfg, stage)
    proxy_params = _proxy_params(cfg, encap_plugin, trace)
    raw = dict(proxy_params)
    if cfg.cache_size is not None:
        raw["cache_size"] = str(cfg.cache_size)
    # validates everything before any change
    spec = resolve_spec(cfg.encap, key, raw, tuple(cfg.stages) if cfg.with_proxy else ())
    if trace is not None and "ioam" not in spec.encap.plugin.carriers(spec.encap_params):
        raise UsageError(f"--ioam / --stage ioam: encap {cfg.encap} carries no IOAM trace "
                         "(nsh and srv6 do)")
    say(f"sfcframe demo: {cfg.encap}, key {key}, VNF {cfg.vnf}, {cfg.seconds:g} s of traffic; "
        "compiling the stamper and the checker ...")
    after_proxy = cfg.with_proxy if cfg.after_proxy is None else cfg.after_proxy

    topo = Topology(chains=cfg.chains, vnf=cfg.with_proxy)
    if cfg.tag:
        topo.tag = cfg.tag
    if trace is not None:  # full-size packets still fit with the trace
        topo.veth_mtu = VETH_MTU + -(-trace.header_len // 100) * 100
    chains = [programs.Chain(i, topo.receiver_addr(i)) for i in range(1, cfg.chains + 1)]
    summary = Summary(config=_config_dict(cfg, key, spec, topo, trace))
    owner = os.getpid()
    progs = None
    vnf = Vnf(cfg.vnf, delay_ms=cfg.delay_ms) if cfg.with_proxy else None
    proxy = (
        RuntimeProxy(
            name=topo.prefix, encap=cfg.encap, key=key, ifaces=topo.vnf_ifaces,
            netns=f"{topo.prefix}-vnf", params=proxy_params, cache_size=cfg.cache_size,
            stages=tuple(cfg.stages),
            settings=tuple(ioam_stage.setting_assignments(ioam_stage.vnf_settings(trace.namespace))
                           if stage and trace is not None else ()),
        )
        if cfg.with_proxy
        else NoProxy()
    )
    try:
        # 1. the stamper and the checker (compiled before anything is created)
        d = programs.demo_options(encap_plugin, labels=cfg.labels, md_type=cfg.md_type,
                                  proxy_params=spec.encap_params, chains=chains, ioam=trace)
        progs = programs.DemoPrograms(programs.render(encap_plugin, d), len(chains),
                                      ranges=programs.range_names(encap_plugin, d)).load()
        progs.set_after_proxy(after_proxy, protocols=protocol_mask(cfg.traffic))
        # 2. namespaces, the VNF, the proxy (through the runtime), the demo programs
        topo.create()
        say(f"namespaces {', '.join(topo.namespaces.values())}; VNF: "
            f"{vnf.describe() if vnf else 'none (self-test)'}")
        if vnf is not None:
            vnf.setup(topo)
        proxy.up()
        if cfg.with_proxy:
            say(f"proxy {proxy.name} up on {' and '.join(topo.vnf_ifaces)} in {topo.ns('vnf')} "
                f"(from another shell: sfcframe stats {proxy.name})")
        progs.attach_stamper(topo.ns("sff"), topo.sff_iface)
        for rcv in topo.receivers:
            progs.attach_checker(topo.ns(rcv), topo.rcv_iface)
        # 3. traffic, with a progress line per second
        snap = lambda started: chain_snapshot(started, progs, chains, proxy)  # noqa: E731
        if cfg.traffic == "tcp":
            streams = drive_traffic(topo, cfg, snap, progress)
        else:
            from sfcframe.demo import flowtraffic

            streams = flowtraffic.drive(topo, cfg, snap, progress)
        if vnf is not None:
            vnf.stop()
        # 4. numbers
        sample = progs.last_mismatch()
        summary.fill(
            sff=progs.sff_counters(),
            checkers=[progs.checker_per_cpu(c.id) for c in chains],
            unchained=progs.checker_counters(0),
            mismatch_samples=[sample] if sample else [],
            proxy=proxy.stats(),
            streams=streams,
            vnf=vnf.counters(topo) if vnf is not None else {},
            vnf_kind=cfg.vnf,
        )
        summary.dropped_toward_receivers = topo.dropped_toward_receivers()
        summary.ranges = progs.range_stats()
        last = progs.last_match()
        summary.last_match = {**last, "header": last["header"].hex()} if last else {}
        if stage and cfg.with_proxy:
            delay = summary.ranges.get("transit_delay", {})
            summary.dwell = ioam_stage.dwell_view(
                {"count": delay.get("count", 0), "mean_ns": delay.get("mean"),
                 "min_ns": delay.get("min"), "max_ns": delay.get("max")}, summary.proxy_raw)
    finally:
        if os.getpid() != owner:
            # a forked helper (pyroute2 opens netns sockets in forked children and
            # stops them with SIGTERM) that unwound into this frame: it must die
            # here, not tear down the parent's testbed
            os._exit(1)
        summary.teardown = teardown(topo, proxy, vnf, progs)
    return summary


def _config_dict(cfg: DemoConfig, key: str, spec, topo: Topology,
                 trace: ioam_trace.TracePlan | None = None) -> dict[str, Any]:
    return {
        "encap": cfg.encap,
        "labels": cfg.labels if cfg.encap == "mpls" else None,
        "md_type": cfg.md_type if cfg.encap == "nsh" else None,
        "key": key,
        "vnf": cfg.vnf,
        "seconds": cfg.seconds,
        "streams": cfg.streams,
        "chains": cfg.chains,
        "traffic": cfg.traffic,
        "proxy_spec": spec.describe(),
        "ingress_hook": spec.ingress_hook,
        "namespaces": f"{topo.prefix}-*",
        "proxy_name": topo.prefix if cfg.with_proxy else None,
        "stages": list(cfg.stages) if cfg.with_proxy else [],
        "ioam": trace.describe() if trace is not None else None,
    }
