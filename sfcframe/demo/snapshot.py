"""Progress snapshots of a demo run: the counters of its stages, read while traffic flows."""

from __future__ import annotations

import contextlib
import time
from typing import Any


def chain_snapshot(started, progs, chains, proxy) -> dict[str, Any]:
    """Read the stages last to first (receiver, proxy egress, proxy ingress, SFF): a
    packet is counted at each stage before the next, so no line shows a later stage
    ahead of an earlier one."""
    snap: dict[str, Any] = {"elapsed": round(time.monotonic() - started)}
    with contextlib.suppress(Exception):
        counts = [progs.checker_counters(c.id) for c in chains]
        snap["match"] = sum(c["match"] for c in counts)
        snap["mismatch"] = sum(c["mismatch"] for c in counts)
    snap = proxy_snapshot(snap, proxy)
    with contextlib.suppress(Exception):
        snap["stamped"] = progs.sff_counters()["stamped"]
    return snap


def proxy_snapshot(snap: dict[str, Any], proxy) -> dict[str, Any]:
    """Adds the proxy's cached / restored / misses to a progress snapshot."""
    try:
        stats = proxy.stats()
        snap["cached"] = stats.get("ingress", "cached")
        snap["restored"] = stats.get("egress", "restored")
        snap["misses"] = stats.get("egress", "not_cached")
    except Exception as exc:  # noqa: BLE001 - progress must not end the run
        snap["proxy_error"] = str(exc)
    return snap
