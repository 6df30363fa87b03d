"""Removing everything a demo run created, whatever state it got to."""

from __future__ import annotations

import contextlib
import signal
from typing import Any

from sfcframe.demo.topology import Topology, leftover_namespaces
from sfcframe.demo.vnfs import Vnf


def teardown(topo: Topology, proxy, vnf: Vnf | None, progs) -> dict[str, Any]:
    """Undo everything, whatever state the run got to; Ctrl-C and SIGTERM cannot cut it short."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    problems: list[str] = []
    try:
        try:
            down = proxy.down()
        except Exception as exc:  # noqa: BLE001 - report it, tear down the rest
            down = str(exc) or type(exc).__name__
        if down:
            problems.append(f"proxy down: {down} (run `sfcframe down {proxy.name}`)")
        if vnf is not None:
            with contextlib.suppress(Exception):
                vnf.stop()
        if progs is not None:
            progs.close()
        left = topo.destroy()
        left += leftover_namespaces(topo.tag)
        if left:
            problems.append(f"namespaces left: {', '.join(sorted(set(left)))}")
        still = None
        with contextlib.suppress(Exception):
            still = proxy.listed()
        if still:
            problems.append(f"proxy {proxy.name} is still listed by `sfcframe list`")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return {"clean": not problems, "problems": problems}
