"""The ``stats`` documents as Prometheus metrics, through ``prometheus_client``.

One collector (:class:`ProxyCollector`) turns ``stats --json`` documents into
metric families; ``stats --prometheus`` prints them once in the text format
(:func:`render`, for a node exporter's textfile collector) and ``sfcframe
exporter`` serves them over HTTP (:func:`serve`), reading every instance's
pinned maps on each scrape. Both use the same names and labels:

- every sample carries ``proxy`` (the instance name; not ``instance``, which
  is the label Prometheus gives each scrape target);
- ``sfcframe_ingress_packets_total`` / ``sfcframe_egress_packets_total``
  (``proxy``, ``ingress_hook``, ``mode``, ``outcome``): the outcome counters of
  the ingress program (XDP or TC clsact ingress) and the TC egress program;
- ``sfcframe_key_packets_total`` (``map``, ``outcome``): the key's own programs;
  ``sfcframe_stage_packets_total`` (``stage``, ``map``, ``outcome``): a stage's;
- ``sfcframe_stage_labelled_packets_total`` / ``..._bytes_total`` (``map`` and
  the stage's label, e.g. ``apn_id``; ``other``: arrived while the map was full);
- ``sfcframe_stage_histogram`` (``map``, ``le``): a stage's log2 histogram,
  cumulative buckets in the map's own unit, without ``_sum``/``_count`` (the
  kernel keeps bucket counts only);
- gauges: ``sfcframe_proxy_info`` (``encap``, ``key``, ``ingress_hook``,
  ``mode``, ``describe``; 1), ``sfcframe_cache_entries``,
  ``sfcframe_cache_capacity``, ``sfcframe_cache_bytes_per_entry`` (``cache``:
  lru or ring), ``sfcframe_map_memory_bytes`` (``map``), ``sfcframe_strict``,
  ``sfcframe_interface_info`` (``interface``, ``netns``, ``ingress_hook``,
  ``xdp_mode``, ``mode``, ``encap``, ``key``; 1 while attached as recorded, else
  0) and ``sfcframe_proxy_damaged`` (1: its record or pins cannot be read; a
  damaged proxy has no other samples);
- the exporter's own: ``sfcframe_exporter_read_errors_total`` (readings of a
  proxy that failed; it reports as damaged for that scrape) and
  ``sfcframe_exporter_proxies`` (proxies by ``status``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

#: (key, metric name, type, HELP) of every family, in exposition order
FAMILIES = (
    ("ingress", "sfcframe_ingress_packets", "counter",
     "Packets the proxy's ingress program handled (XDP or TC clsact ingress, see the "
     "ingress_hook label), by outcome."),
    ("egress", "sfcframe_egress_packets", "counter",
     "Packets the proxy's TC clsact egress program handled, by outcome."),
    ("key", "sfcframe_key_packets", "counter",
     "Packets the key strategy's own programs counted, by counter map and outcome."),
    ("stage", "sfcframe_stage_packets", "counter",
     "Packets a metadata stage counted, by stage, counter map and outcome."),
    ("labelled_packets", "sfcframe_stage_labelled_packets", "counter",
     "Packets a stage counted per label (e.g. per APN ID; label value \"other\": "
     "arrived while the map was full), by counter map."),
    ("labelled_bytes", "sfcframe_stage_labelled_bytes", "counter",
     "Bytes a stage counted per label, by counter map."),
    ("histogram", "sfcframe_stage_histogram", "histogram",
     "A stage's log2 histogram (map label; values in the map's unit, e.g. ns for "
     "ioam_dwell_ns): cumulative counts of values <= le. No _sum or _count: the "
     "kernel keeps bucket counts only."),
    ("info", "sfcframe_proxy_info", "gauge",
     "1 per proxy; its encapsulation, key, ingress hook, mode and spec as labels."),
    ("entries", "sfcframe_cache_entries", "gauge",
     "Entries in the cache now (LRU hash: keys; ring: slots holding an entry; assoc: "
     "slots holding one): in-flight packets and stale entries."),
    ("capacity", "sfcframe_cache_capacity", "gauge",
     "Entries the cache holds at most (max_entries; ring: slots; assoc: buckets x 16 slots)."),
    ("stale", "sfcframe_cache_stale_entries", "gauge",
     "cache=assoc: entries older than the horizon (freed when an insert touches their "
     "bucket)."),
    ("events", "sfcframe_cache_events", "counter",
     "cache=assoc: entries evicted (live, displaced), reclaimed (stale) and moved (to their "
     "other bucket), by event."),
    ("per_entry", "sfcframe_cache_bytes_per_entry", "gauge",
     "Kernel-charged memory of the cache map divided by its capacity."),
    ("memory", "sfcframe_map_memory_bytes", "gauge",
     "Memory the kernel charges for each map (memlock)."),
    ("strict", "sfcframe_strict", "gauge", "1 if the programs run in strict mode."),
    ("iface", "sfcframe_interface_info", "gauge",
     "One per proxied interface: 1 while its ingress hook (XDP or TC) and TC egress are "
     "attached as recorded, else 0."),
    ("damaged", "sfcframe_proxy_damaged", "gauge",
     "1 if the proxy's state record or pins cannot be read (see sfcframe list); it has "
     "no other samples then."),
)

#: log2 histogram buckets: bucket i counts values in [2^i, 2^(i+1)) (bucket 0 also 0)
HISTOGRAM_BUCKETS = 64


def _families() -> dict[str, Metric]:
    return {key: Metric(name, help_text, kind) for key, name, kind, help_text in FAMILIES}


def _counter(family: Metric, value: float, labels: dict[str, Any]) -> None:
    family.add_sample(family.name + "_total", _text(labels), float(value))


def _gauge(family: Metric, value: float, labels: dict[str, Any]) -> None:
    family.add_sample(family.name, _text(labels), float(value))


def _text(labels: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in labels.items()}


def _stage_of(map_name: str, stages: Iterable[str]) -> str | None:
    """The stage whose counter map this is (``stage_<name>_counters``), else None."""
    for stage in stages:
        if map_name == f"stage_{stage}_counters":
            return stage
    return None


def families(docs: Iterable[dict[str, Any]]) -> list[Metric]:
    """The metric families of these ``stats --json`` documents (only non-empty ones)."""
    out = _families()
    for doc in docs:
        proxy = {"proxy": doc["name"]}
        damaged = doc.get("status") == "damaged"
        _gauge(out["damaged"], int(damaged), proxy)
        if damaged:
            continue
        hook, mode = doc.get("ingress_hook") or "xdp", doc.get("mode") or "cache"
        _gauge(out["info"], 1, {**proxy, "encap": doc["encap"], "key": doc["key"],
                                "ingress_hook": hook, "mode": mode,
                                "describe": doc.get("describe", "")})
        for direction in ("ingress", "egress"):
            for outcome, value in doc["counters"][direction].items():
                _counter(out[direction], value, {**proxy, "ingress_hook": hook, "mode": mode,
                                                 "outcome": outcome})
        for map_name, counts in doc["extra_counters"].items():
            stage = _stage_of(map_name, doc.get("stages", ()))
            for outcome, value in counts.items():
                if stage is None:
                    _counter(out["key"], value, {**proxy, "map": map_name, "outcome": outcome})
                else:
                    _counter(out["stage"], value, {**proxy, "stage": stage, "map": map_name,
                                                   "outcome": outcome})
        for map_name, lc in doc.get("labelled_counters", {}).items():
            for label, count in lc["counts"].items():
                labels = {**proxy, "map": map_name, lc["label"]: label}
                _counter(out["labelled_packets"], count["packets"], labels)
                _counter(out["labelled_bytes"], count["bytes"], labels)
        for map_name, hist in doc.get("histograms", {}).items():
            total = 0
            family = out["histogram"]
            for i, n in enumerate(hist["buckets"][:HISTOGRAM_BUCKETS]):
                total += n
                family.add_sample(family.name + "_bucket",
                                  _text({**proxy, "map": map_name,
                                         "le": floatToGoString((2 << i) - 1)}),
                                  float(total))
            family.add_sample(family.name + "_bucket",
                              _text({**proxy, "map": map_name, "le": "+Inf"}), float(total))
        cache = doc["cache"]
        if cache is not None:  # mode=static has no cache
            labels = {**proxy, "cache": cache.get("kind", "lru")}
            _gauge(out["entries"], cache["entries"], labels)
            _gauge(out["capacity"], cache["capacity"], labels)
            _gauge(out["per_entry"], cache["bytes_per_entry"], labels)
            if cache.get("kind") == "assoc":
                _gauge(out["stale"], cache["stale"], labels)
                for event, value in cache["events"].items():
                    _counter(out["events"], value, {**labels, "event": event})
        for map_name, info in doc["maps"].items():
            _gauge(out["memory"], info["memlock_bytes"], {**proxy, "map": map_name})
        _gauge(out["strict"], int(bool(doc["settings"]["strict"])), proxy)
        for iface in doc["interfaces"]:
            _gauge(out["iface"], int(iface["ok"]), {
                **proxy, "interface": iface["name"], "netns": iface["netns"],
                "ingress_hook": iface.get("ingress_hook") or hook,
                "xdp_mode": iface["xdp_mode"], "mode": mode,
                "encap": doc["encap"], "key": doc["key"]})
    return [family for family in out.values() if family.samples]


class _Static:
    """A collector of a fixed list of families (one exposition of ``stats``)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def render(docs: Iterable[dict[str, Any]]) -> str:
    """The documents in the Prometheus text exposition format (``stats --prometheus``)."""
    from prometheus_client.exposition import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(families(docs)))
    return generate_latest(registry).decode()


class ProxyCollector:
    """Every instance's figures, read afresh on each scrape.

    ``read`` returns the documents of every instance; one that cannot be read is a
    damaged document (:func:`sfcframe.runtime.stats.collect_instance`), and any other
    failure of one instance is caught here too, counted and reported as damaged,
    so that one broken proxy never hides the others.
    """

    def __init__(self, scan: Callable[[], list[Any]] | None = None,
                 read: Callable[[Any], dict[str, Any]] | None = None) -> None:
        from sfcframe.runtime import health
        from sfcframe.runtime.stats import collect_instance

        self.scan = scan or health.scan
        self.read = read or collect_instance
        self.errors = 0
        self.lock = threading.Lock()
        self.reported: dict[str, str] = {}  # proxy -> reason last logged

    def documents(self) -> list[dict[str, Any]]:
        from sfcframe.runtime.stats import damaged

        docs = []
        try:
            instances = self.scan()
        except Exception as exc:  # noqa: BLE001 - the exporter must answer anyway
            self._failed("(scan)", f"listing the instances failed: {exc}")
            return []
        for instance in instances:
            try:
                doc = self.read(instance)
            except Exception as exc:  # noqa: BLE001 - one proxy never breaks the others
                self._failed(instance.name, f"reading it failed: {exc}")
                doc = damaged(instance.name, f"reading it failed: {exc}")
            docs.append(doc)
            if doc.get("status") == "damaged":
                self._log_damaged(doc["name"], doc.get("reason", ""))
            else:
                self.reported.pop(doc["name"], None)
        return docs

    def _failed(self, name: str, reason: str) -> None:
        with self.lock:
            self.errors += 1
        log.warning("%s: %s", name, reason)

    def _log_damaged(self, name: str, reason: str) -> None:
        if self.reported.get(name) != reason:
            self.reported[name] = reason
            log.warning("%s: damaged: %s", name, reason)

    def collect(self) -> Iterator[Metric]:
        docs = self.documents()
        yield from families(docs)
        errors = Metric("sfcframe_exporter_read_errors",
                        "Readings of a proxy (or of the list of proxies) that failed with an "
                        "unexpected error; the proxy reports as damaged for that scrape.",
                        "counter")
        errors.add_sample("sfcframe_exporter_read_errors_total", {}, float(self.errors))
        yield errors
        proxies = Metric("sfcframe_exporter_proxies",
                         "Proxies this scrape found, by status (up, degraded, starting, "
                         "stopping, damaged).", "gauge")
        counts: dict[str, int] = {}
        for doc in docs:
            counts[doc.get("status", "?")] = counts.get(doc.get("status", "?"), 0) + 1
        for status, n in sorted(counts.items()):
            proxies.add_sample("sfcframe_exporter_proxies", {"status": status}, float(n))
        yield proxies


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[::1]:9000`` for IPv6; port 0: any free port) as (addr, port)."""
    from sfcframe.runtime.errors import ConfigError

    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"--listen {text!r}: expected ADDR:PORT, e.g. 127.0.0.1:9580 or "
                          "[::1]:9580")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"--listen {text!r}: put an IPv6 address in brackets, [::1]:9580")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigError(f"--listen {text!r}: the port must be 0..65535")
    return host, number


def serve(listen: str, stop: threading.Event, say: Callable[[str], None]) -> None:
    """Serve every instance's metrics at http://ADDR:PORT/metrics until ``stop`` is set."""
    from prometheus_client.exposition import start_http_server

    from sfcframe.runtime.errors import ConfigError

    host, port = parse_listen(listen)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProxyCollector())
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"--listen {listen}: cannot listen there: {exc.strerror or exc}") \
            from None
    try:
        bound_host, bound_port = server.server_address[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        say(f"serving every proxy's metrics at http://{shown}:{bound_port}/metrics "
            "(Ctrl-C ends)")
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
