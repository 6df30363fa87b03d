"""The proxy's ``ioam`` stage in the demos (``sfcframe demo ... --stage ioam``).

The stage (``plugins/sfcframe-ioam``) fills the VNF host's node data in an IOAM
trace on behalf of the SFC-unaware function: its identities are runtime
settings, written here through the runtime exactly as ``sfcframe set NAME
ioam.X=V`` writes them (:func:`setting_assignments`). The VNF host is node 2 of
both demos' IOAM numbering (:func:`sfcframe.demo.srv6_ioam.node_ids`: node id
0x5FC002, ``in0`` 0x201, ``out0`` 0x202, namespace data 0xDA7A0002, the wide
ones alike), which is what the SRv6 testbed's kernel would write as that host
and what the checkers expect of the proxy's slot.

The function's **dwell time** is reported twice (:func:`dwell_view`): as the
checker read it in the proxy-written node data (the transit delay field, mean /
minimum / maximum over every checked packet) and as the proxy counted it itself
(its ``ioam_dwell_ns`` log2 histogram, p50 / p90 / p99, from the runtime's stats).
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.demo import srv6_ioam
from sfcframe.runtime.stats import _range_ns as bucket_text

#: the stage's name (``--stage ioam``) and its dwell-time histogram
STAGE = "ioam"
DWELL_HISTOGRAM = "ioam_dwell_ns"
COUNTERS_MAP = "stage_ioam_counters"


def wanted(stages) -> bool:
    """Whether the run's stages include the IOAM stage."""
    return STAGE in tuple(stages or ())


def vnf_settings(namespace: int = srv6_ioam.IOAM_NAMESPACE) -> dict[str, int]:
    """The stage's settings for the VNF host (node 2): the identities the testbed
    gives that node (``in0`` toward the SFF is the ingress, ``out0`` the egress),
    in the namespace the trace is in."""
    ids = srv6_ioam.node_ids("vnf")
    ingress, egress = srv6_ioam.IFACES["vnf"]
    return {
        "namespace": namespace,
        "node_id": ids.node_id,
        "node_id_wide": ids.wide_node_id,
        "ingress_if": ids.if_ids[ingress][0],
        "egress_if": ids.if_ids[egress][0],
        "ingress_if_wide": ids.if_ids[ingress][1],
        "egress_if_wide": ids.if_ids[egress][1],
        "namespace_data": ids.namespace_data,
        "namespace_data_wide": ids.wide_namespace_data,
    }


def setting_assignments(settings: Mapping[str, int]) -> list[str]:
    """``ioam.X=V`` arguments of ``sfcframe set NAME ...`` for these settings."""
    return [f"{STAGE}.{name}={value:#x}" for name, value in settings.items()]


def proxy_view(proxy_raw: Mapping[str, Any]) -> dict[str, Any]:
    """The stage's counters and dwell-time histogram from the runtime's stats document."""
    hist = (proxy_raw.get("histograms") or {}).get(DWELL_HISTOGRAM) or {}
    return {
        "counters": dict((proxy_raw.get("extra_counters") or {}).get(COUNTERS_MAP, {})),
        "dwell": {k: hist.get(k) for k in ("count", "p50", "p90", "p99")} if hist else {},
    }


def dwell_view(checker: Mapping[str, Any], proxy_raw: Mapping[str, Any]) -> dict[str, Any]:
    """The function's dwell time: ``checker`` (the transit delay the checker read in
    the proxy's node data: ``count``, ``mean_ns``, ``min_ns``, ``max_ns``) and
    ``proxy`` (the stage's own histogram and counters)."""
    return {"checker": dict(checker), **proxy_view(proxy_raw)}


def _ns(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} ns"


def dwell_lines(view: Mapping[str, Any]) -> list[str]:
    """The summary's dwell-time lines."""
    if not view:
        return []
    c, dwell = view.get("checker") or {}, view.get("dwell") or {}
    lines = [
        f"  dwell time   function (VNF) dwell time by the proxy-written transit delay: mean "
        f"{_ns(c.get('mean_ns'))}, min {_ns(c.get('min_ns'))}, max {_ns(c.get('max_ns'))} "
        f"over {c.get('count', 0)} packets (checker)",
        f"  dwell time   by the proxy's {DWELL_HISTOGRAM} histogram: p50 {bucket_text(dwell.get('p50'))}, "
        f"p90 {bucket_text(dwell.get('p90'))}, p99 {bucket_text(dwell.get('p99'))} over "
        f"{dwell.get('count') or 0} packets (log2 buckets, as sfcframe stats prints them)",
    ]
    counters = view.get("counters") or {}
    if counters:
        lines.append("  ioam stage   " + (" ".join(f"{k}={v}" for k, v in counters.items() if v)
                                          or "(all zero)"))
    return lines
