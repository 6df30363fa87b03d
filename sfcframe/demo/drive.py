"""Running the senders of a demo run to their end, with a progress snapshot once a second."""

from __future__ import annotations

import time
from typing import Any, Callable

from sfcframe.demo import traffic
from sfcframe.demo.config import DemoConfig, Progress
from sfcframe.demo.topology import Topology

#: how long iperf3 may take beyond its test time before it is stopped (a stalled path)
TRAFFIC_GRACE = 15


def drive_traffic(topo: Topology, cfg: DemoConfig, snapshot: Callable[[float], dict[str, Any]],
                  progress: Progress | None) -> list[traffic.Stream]:
    """iperf3 for cfg.seconds with cfg.streams streams; ``progress(snapshot(started))``
    once a second; stopped TRAFFIC_GRACE seconds after the test time at the latest."""
    streams = traffic.plan(topo, cfg.streams)
    traffic.start(topo, streams, cfg.seconds)
    wait_for_senders(streams, cfg.seconds, snapshot, progress)
    traffic.collect(streams)
    time.sleep(0.2)  # let the last segments and ACKs land
    return streams


def wait_for_senders(streams: list[traffic.Stream], seconds: float,
                     snapshot: Callable[[float], dict[str, Any]],
                     progress: Progress | None) -> None:
    """Until every sender in ``streams`` has ended (stopped TRAFFIC_GRACE seconds after
    ``seconds`` at the latest), ``progress(snapshot(started))`` once a second."""
    started = time.monotonic()
    next_tick = started + 1
    deadline = started + seconds + TRAFFIC_GRACE
    while traffic.running(streams):
        if time.monotonic() > deadline:
            traffic.stop(streams, f"no end {TRAFFIC_GRACE:g} s after the test time")
            break
        time.sleep(max(0.0, min(0.2, next_tick - time.monotonic())))
        if time.monotonic() >= next_tick and progress is not None:
            next_tick += 1
            progress(snapshot(started))
