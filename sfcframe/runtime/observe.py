"""Sample how many packets a running proxy holds in flight (``sfcframe size --observe``).

The in-flight count is read from the outcome counters, not by walking the cache:
reading two per-CPU counter arrays is cheap enough to sample every few
milliseconds, walking a 100,000-entry map is not. Between two samples

    in flight(t) = in flight(t0) + [entries made](t0..t) - [entries consumed](t0..t)

with *made* = ingress ``cached`` (plus ingress ``plain`` when the key keeps plain
markers in the cache) and *consumed* = egress ``restored`` (plus egress ``plain``).
in flight(t0) is the cache's entry count at the start (one walk). Packets the
VNF drops and entries the LRU evicts are never consumed, so the estimate can
only err upwards: a safe basis for sizing. ``drift_pps`` reports how fast it
grows over the window, which is the loss rate when the traffic is steady.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from sfcframe.runtime import health, state, stats
from sfcframe.runtime.errors import ConfigError, DamagedError


@dataclass
class Observation:
    name: str
    seconds: float
    interval_s: float
    samples: int
    start_entries: int
    peak_in_flight: int
    mean_in_flight: float
    p99_in_flight: int
    rate_pps: float  # entries made per second over the window
    drift_pps: float  # growth of the estimate per second (losses, stale entries)
    plain_in_cache: bool

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for k in ("mean_in_flight", "rate_pps", "drift_pps"):
            doc[k] = round(doc[k], 1)
        return doc


def _plain_in_cache(record: state.Record) -> bool:
    """tcpip-style keys keep a marker entry per plain packet; carrier keys do not."""
    from sfcframe import discovery

    plugin = discovery.load("key", record.key).plugin
    return not plugin.plain_in_carrier and bool(
        record.spec.get("core", {}).get("track_plain", True))


def counter_reader(record: state.Record) -> tuple[Callable[[], tuple[int, int]], bool]:
    """A function returning (made, consumed) so far, and whether plain markers count."""
    plain = _plain_in_cache(record)
    ingress_path = record.maps[stats.DIRECTIONS["ingress"]]
    egress_path = record.maps[stats.DIRECTIONS["egress"]]
    in_names, eg_names = list(record.ingress_outcomes), list(record.egress_outcomes)

    def read() -> tuple[int, int]:
        ing = stats.read_counters(ingress_path, in_names)
        eg = stats.read_counters(egress_path, eg_names)
        made = ing.get("cached", 0) + (ing.get("plain", 0) if plain else 0)
        consumed = eg.get("restored", 0) + (eg.get("plain", 0) if plain else 0)
        return made, consumed

    return read, plain


def wait_up(name: str, stop: threading.Event, poll: float = 0.05) -> bool:
    """Wait until instance ``name`` is up (True) or ``stop`` is set (False)."""
    while not stop.is_set():
        with contextlib.suppress(DamagedError):
            record = state.load(name)
            if record is not None and record.status == "up":
                return True
        time.sleep(poll)
    return False


def observe(name: str, seconds: float = 10.0, interval: float = 0.01,
            stop: threading.Event | None = None,
            progress: Callable[[float, int, int], None] | None = None) -> Observation:
    """Sample the instance ``name`` for ``seconds`` (or until ``stop`` is set);
    ``progress(elapsed, samples, peak)`` is called about once a second."""
    if seconds <= 0 or interval <= 0:
        raise ConfigError("observe: --seconds and --interval must be above zero")
    record = health.require(name)
    if stats.CACHE_MAP not in record.maps:
        raise ConfigError(f"observe: {name} has no cache (nothing to size)")
    read, plain = counter_reader(record)
    start_entries = stats.count_entries(record.maps[stats.CACHE_MAP])
    made0, consumed0 = read()
    t0 = time.monotonic()
    values: list[int] = []
    deadline = t0 + seconds
    made = made0
    shown = t0
    while True:
        try:
            made, consumed = read()
        except Exception:  # noqa: BLE001 - the instance went down: keep what was sampled
            break
        values.append(start_entries + (made - made0) - (consumed - consumed0))
        now = time.monotonic()
        if progress is not None and now - shown >= 1.0:
            shown = now
            progress(now - t0, len(values), max(0, max(values)))
        if now >= deadline or (stop is not None and stop.is_set()):
            break
        time.sleep(min(interval, max(0.0, deadline - now)))
    elapsed = max(time.monotonic() - t0, 1e-9)
    ordered = sorted(values)
    if not values:
        values = [start_entries]
    return Observation(
        name=name,
        seconds=round(elapsed, 3),
        interval_s=interval,
        samples=len(values),
        start_entries=start_entries,
        peak_in_flight=max(0, ordered[-1]),
        mean_in_flight=max(0.0, sum(values) / len(values)),
        p99_in_flight=max(0, ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]),
        rate_pps=(made - made0) / elapsed,
        drift_pps=(values[-1] - values[0]) / elapsed,
        plain_in_cache=plain,
    )
