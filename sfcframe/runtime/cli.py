"""Sub-commands ``up``, ``list``, ``stats``, ``set``, ``down`` and ``size``.

:func:`add_parsers` adds them to the ``sfcframe`` parser; :data:`HANDLERS`
maps each to its function. Errors are raised as SfcError subclasses and
printed as one line by :func:`sfcframe.cli.main`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Any

UP_EPILOG = """\
examples:
  sfcframe up --name vnf1 --encap mpls --key tcpip --iface eth1 --iface eth2
  sfcframe up --name vnf1 --encap nsh --key metadata --iface veth0 --netns vnf --strict
  sfcframe up --config proxy.toml --cache-size 65536      # flags override the file
  sfcframe up --name vnf1 --encap mpls --key tcpip --iface eth1 --ingress tc
  sfcframe up --name st1 --encap mpls --key tcpip --iface eth1 --mode static --static-header 100,200

The ingress program is attached as XDP (or, with --ingress tc, as a TC clsact
ingress filter) and the egress program as a TC clsact egress filter (prio
24512, handle 0x5fc) on every interface; GRO, GRO fraglist,
LRO and hardware GRO are switched off on them (restored by down; see README).
Maps and programs are pinned under /sys/fs/bpf/sfcframe/NAME/, the state is in
/run/sfcframe/NAME.json. Any failure rolls back every step already done. One
instance per interface: an interface another instance proxies, or with a TC
filter at prio 24512, is refused (README: "Operating safely").
"""

SIZE_EPILOG = """\
examples:
  sfcframe size --rate 2.5Mpps --delay 5ms
  sfcframe size --rate 800kpps --delay 200us --encap mpls --param max_labels=10 --margin 8
  sfcframe size --observe demo1 --seconds 10     # sample a running proxy's real in-flight peak

--delay is the sojourn from the proxy's ingress to its egress, queueing in front of the VNF
included, not the VNF's nominal delay: behind a user-space VNF it was 5-12x the nominal delay
here (BENCHMARKS.md, delay VNF). When unsure, run with a generous cache and use --observe:
it samples the instance's counters (made - consumed entries) and sizes from the peak
(margin 2 by default). For cache=lru the recommendation adds the LRU's per-CPU slack
(128 entries per CPU the kernel's LRU can evict early) and rounds up to a power of two;
cache=assoc plans for at most 75 % fill in whole buckets of 16; cache=ring (e.g. --key
metadata) evicts nothing early and is sized exactly. The answer is
two lines; -v shows the entry layout, the memory and why the margin.
"""


EXPORTER_EPILOG = """\
examples:
  sfcframe exporter --listen 127.0.0.1:9580
  curl -s http://127.0.0.1:9580/metrics | grep sfcframe_ingress_packets_total

Each sample carries the label proxy (the instance name): Prometheus sets
instance itself, to the scrape target. For a node exporter's textfile
collector instead: sfcframe stats --prometheus > /var/lib/node_exporter/sfcframe.prom
"""


#: the longest interval or duration a flag takes: one day
MAX_SECONDS = 86400.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected seconds above 0 and at most {MAX_SECONDS:.0f}")
    return value


def _needs_root(command: str) -> None:
    """The state directory and the pins are root's only."""
    from sfcframe.errors import KernelFeatureError

    if os.geteuid() != 0:
        raise KernelFeatureError(
            f"sfcframe {command} needs root (the state in /run/sfcframe and the pinned maps "
            "are root's only)")


def add_parsers(sub) -> None:
    from sfcframe.coreflags import add_core_flags, add_param_flag

    up = sub.add_parser(
        "up",
        help="compile, pin and attach a proxy on interfaces (XDP ingress, TC egress)",
        description="Start a named proxy instance on one interface (one-armed VNF) or "
        "several (two-armed), optionally in a named network namespace.",
        epilog=UP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--config", metavar="FILE", help="TOML file with the same settings")
    up.add_argument("--name", help="instance name (letters, digits, - and _)")
    up.add_argument("--encap", help="encapsulation plugin, e.g. mpls, nsh")
    up.add_argument("--key", help="key strategy plugin, e.g. tcpip, metadata")
    up.add_argument("--stage", action="append", metavar="STAGE",
                    help="metadata stage, e.g. ioam (repeatable, in order; its runtime "
                    "settings: sfcframe set NAME STAGE.SETTING=VALUE)")
    up.add_argument(
        "--iface", action="append", metavar="IFACE", help="interface to proxy (repeatable)"
    )
    up.add_argument("--netns", help="named network namespace of the interfaces (ip netns)")
    add_param_flag(up, help="plugin or core parameter (repeatable)")
    up.add_argument(
        "--xdp-mode", choices=("native", "generic", "auto"), default=None,
        help="XDP attach mode; auto (default) tries native, then generic",
    )
    up.add_argument(
        "--keep-offloads", action="store_true", default=False,
        help="do not switch GRO/LRO off; refuse an interface that has them on",
    )
    up.add_argument("-j", "--json", action="store_true", help="print the state record as JSON")
    add_core_flags(up, helps={
        "strict": "drop malformed packets and egress misses instead of passing them "
        "(default false; changeable later with `sfcframe set NAME strict=...`)",
        "static_header": "mode=static: the header egress pushes (mpls: labels 100,200,300; "
        "any encap: hex); changeable later with `sfcframe set NAME --static-header`"})

    lst = sub.add_parser("list", help="running instances and where they are attached")
    lst.add_argument("-j", "--json", action="store_true",
                     help="machine-readable output (README: list --json and stats --json)")

    stats = sub.add_parser(
        "stats",
        help="counters, cache occupancy and map memory of an instance",
        description="Read an instance's pinned maps. Without NAME: every instance.",
    )
    stats.add_argument("name", nargs="?", help="instance name (default: all)")
    fmt = stats.add_mutually_exclusive_group()
    fmt.add_argument(
        "-j", "--json", action="store_true", help="stable JSON (README: stats --json schema)"
    )
    fmt.add_argument("--prometheus", action="store_true", help="Prometheus text exposition format")
    stats.add_argument(
        "--watch", type=_seconds, metavar="SECONDS",
        help="print again every SECONDS until Ctrl-C (JSON: one document per line)",
    )

    cache = sub.add_parser(
        "cache",
        help="the live entries of an instance's cache, decoded",
        description="Read the instance's pinned cache map: every live entry with its key "
        "(addresses and ports in the usual notation; the ring: the packet's id), the cached "
        "header in the encapsulation's notation (mpls: label/tc/ttl, /S on the bottom "
        "label; nsh: SPI, SI, ...), plain markers, and the entry's age where the cache kind "
        "knows it (ring: packets since; lru: n/a, the kernel keeps no time). Newest first "
        "for the ring.",
    )
    cache.add_argument("name", help="instance name")
    cache.add_argument("-j", "--json", action="store_true",
                       help="machine-readable (README: sfcframe cache)")
    cache.add_argument("--limit", type=int, default=20, metavar="N",
                       help="show at most N entries (default 20; 0: all)")

    exporter = sub.add_parser(
        "exporter",
        help="serve every instance's figures to Prometheus over HTTP",
        description="A Prometheus exporter (prometheus_client): every scrape of "
        "http://ADDR:PORT/metrics reads every instance's pinned maps afresh, with the "
        "metric names and labels of `stats --prometheus` (README: \"Prometheus\"). A "
        "damaged instance reports sfcframe_proxy_damaged 1 and never hides the others. "
        "Runs until Ctrl-C or SIGTERM.",
        epilog=EXPORTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exporter.add_argument(
        "--listen", required=True, metavar="ADDR:PORT",
        help="address and port to serve on, e.g. 127.0.0.1:9580, [::1]:9580, 0.0.0.0:9580 "
        "(port 0: any free port, printed at start)")

    setp = sub.add_parser(
        "set",
        help="change runtime settings of a running instance (strict=true|false|default, "
        "STAGE.SETTING=VALUE|default)",
        description="Write runtime settings into the instance's sfc_settings map; the "
        "programs apply them to the next packet, nothing is reloaded.",
    )
    setp.add_argument("name", help="instance name")
    setp.add_argument("settings", nargs="*", metavar="SETTING=VALUE",
                      help="e.g. strict=false, ioam.node_id=7")
    setp.add_argument(
        "--from", dest="from_file", metavar="FILE", default=None,
        help="read SETTING=VALUE lines from FILE too ('#' comments; e.g. a node's proof-of-"
        "transit secrets from `sfcframe pot profile`): secrets stay off the command line",
    )
    setp.add_argument(
        "--static-header", metavar="HEADER", default=None,
        help="mode=static: the header egress pushes from the next packet on (mpls: labels "
        "100,200,300; any encap: hex; 'none': push nothing; 'default': the build's)",
    )

    down = sub.add_parser(
        "down",
        help="detach, unpin and restore everything an instance changed (idempotent)",
        description="Detach XDP and the TC filters, delete a clsact qdisc up created, "
        "restore offloads, unpin the maps and remove the state record. An unknown or "
        "already stopped name prints 'not running' and exits 0.",
    )
    down.add_argument("name", help="instance name")

    size = sub.add_parser(
        "size",
        help="cache entries and bytes by Little's law (rate x delay x margin)",
        epilog=SIZE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size.add_argument("--rate", help="packet rate, e.g. 2.5Mpps, 800kpps, 1e6pps")
    size.add_argument("--delay", help="sojourn ingress -> egress, e.g. 5ms, 200us, 1s")
    size.add_argument("--observe", metavar="NAME",
                      help="size from a running instance's sampled in-flight peak instead "
                      "of --rate/--delay (its encap, key and parameters are used)")
    size.add_argument("--seconds", type=_seconds, default=10.0,
                      help="with --observe: how long to sample (default 10)")
    size.add_argument("--interval", type=_seconds, default=0.01,
                      help="with --observe: seconds between samples (default 0.01)")
    size.add_argument("--encap", default="mpls", help="encapsulation plugin (default mpls)")
    size.add_argument("--key", default="tcpip", help="key strategy (default tcpip)")
    add_param_flag(size, help="plugin parameter (repeatable), e.g. max_labels=10")
    size.add_argument("--margin", type=float, default=None,
                      help="safety factor (default 4 on rate x delay, 2 on an observed peak)")
    size.add_argument("-j", "--json", action="store_true", help="machine-readable output")
    size.add_argument("-v", "--verbose", action="store_true",
                      help="how the answer was reached: entry layout, memory, and why the "
                      "margin (for the build's cache kind)")


def _up(args: argparse.Namespace) -> int:
    from sfcframe.runtime.config import build_request
    from sfcframe.runtime.instance import up

    request = build_request(args)
    progress = sys.stderr if args.json else sys.stdout  # keep --json output parseable
    record = up(request, say=lambda line: print(line, file=progress, flush=True))
    if args.json:
        print(json.dumps(record.as_dict(), indent=2, sort_keys=True))
        return 0
    where = f" in netns {record.netns}" if record.netns else ""
    def arm(i) -> str:
        hooks = ([f"xdp {i.xdp_mode}"] if i.xdp_mode else []) + [
            f"tc {f.direction}" for f in i.filters
        ]
        return f"{i.name} ({', '.join(hooks)})"

    arms = ", ".join(arm(i) for i in record.interfaces)
    static = " (static)" if record.mode == "static" else ""
    print(f"{record.name} up: {record.encap}/{record.key}{static} on {arms}{where}")
    print(f"pinned at {record.pin_dir}; strict={str(record.settings['strict']).lower()}; "
          f"`sfcframe stats {record.name}`, `sfcframe down {record.name}`")
    return 0


def instances_document(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The one JSON convention of ``list --json`` and ``stats --json`` (README: "JSON
    output"): an object with ``schema``, the instances under ``instances`` in name order."""
    from sfcframe.runtime.state import SCHEMA

    return {"schema": SCHEMA, "instances": rows}


def _list_row(instance) -> dict[str, Any]:
    from sfcframe.runtime.stats import attachment

    record = instance.record
    if instance.damaged:
        row = dict.fromkeys(("encap", "key", "describe", "netns", "strict", "started",
                             "ingress_hook", "mode"))
        return {**row, "name": instance.name, "status": "damaged", "reason": instance.problem,
                "interfaces": []}
    interfaces = attachment(record)
    return {
        "name": record.name,
        "encap": record.encap,
        "key": record.key,
        "describe": record.describe,
        "netns": record.netns,
        "status": record.status if all(i["ok"] for i in interfaces) else "degraded",
        "reason": None,
        "strict": record.settings.get("strict", record.default_strict),
        "started": round(record.started, 3),
        "ingress_hook": record.ingress_hook,
        "mode": record.mode,
        "interfaces": [
            {"name": i["name"], "xdp_mode": i["xdp_mode"], "ingress_hook": i["ingress_hook"],
             "ok": i["ok"]} for i in interfaces
        ],
    }


def _list(args: argparse.Namespace) -> int:
    from sfcframe.runtime import health

    _needs_root("list")
    rows = [_list_row(instance) for instance in health.scan()]
    if args.json:
        print(json.dumps(instances_document(rows), indent=2, sort_keys=True))
        return 0
    if not rows:
        print("no instances")
        return 0
    print(f"{'NAME':<16} {'ENCAP/KEY':<16} {'NETNS':<12} {'STATUS':<9} INTERFACES")
    for row in rows:
        if row["status"] == "damaged":
            print(f"{row['name']:<16} {'-':<16} {'-':<12} {'damaged':<9} {row['reason']}")
            continue
        arms = ", ".join(
            f"{i['name']}({i['xdp_mode'] or 'tc ingress'}){'' if i['ok'] else '!'}"
            for i in row["interfaces"]
        )
        print(f"{row['name']:<16} {row['encap'] + '/' + row['key']:<16} "
              f"{row['netns'] or '-':<12} {row['status']:<9} {arms}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from sfcframe.runtime import health, prometheus
    from sfcframe.runtime.errors import DamagedError
    from sfcframe.runtime.stats import collect_instance, render_text

    _needs_root("stats")

    def documents() -> list[dict[str, Any]]:
        """One document per instance; a damaged one says why (only a named one is an error)."""
        if not args.name:
            return [collect_instance(i) for i in health.scan()]
        doc = collect_instance(health.Instance(args.name, health.require(args.name)))
        if doc["status"] == "damaged":
            raise DamagedError(f"{args.name}: damaged: {doc['reason']}; "
                               f"`sfcframe down {args.name}` cleans it up")
        return [doc]

    def show(docs: list[dict[str, Any]], previous: dict[str, dict] | None, watching: bool) -> None:
        if args.prometheus:
            sys.stdout.write(prometheus.render(docs))
        elif args.json:
            doc: Any = docs[0] if args.name else instances_document(docs)
            print(json.dumps(doc, sort_keys=True) if watching
                  else json.dumps(doc, indent=2, sort_keys=True))
        else:
            if watching:
                print(time.strftime("--- %H:%M:%S ---"))
            if not docs:
                print("no instances")
            for doc in docs:
                print(render_text(doc, (previous or {}).get(doc["name"])))
        sys.stdout.flush()

    if not args.watch:
        show(documents(), None, False)
        return 0
    # Ctrl-C (SIGINT) or SIGTERM ends the watch. A flag, not KeyboardInterrupt: an exception
    # raised while the interpreter runs an at-fork handler (subprocesses) is swallowed
    # ("Exception ignored"), and the watch would never end.
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    previous: dict[str, dict] = {}
    try:
        while not stop.is_set():
            docs = documents()
            show(docs, previous, True)
            previous = {d["name"]: d for d in docs}
            stop.wait(args.watch)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return 0


def _cache(args: argparse.Namespace) -> int:
    from sfcframe.runtime import cacheinspect, health
    from sfcframe.runtime.errors import ConfigError

    _needs_root("cache")
    if args.limit < 0:
        raise ConfigError("cache: --limit must be 0 (all) or more")
    record = health.require(args.name)
    doc = cacheinspect.inspect(record, args.limit or None)
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        print(cacheinspect.render_text(doc))
    return 0


def _exporter(args: argparse.Namespace) -> int:
    import logging

    from sfcframe.runtime import prometheus

    _needs_root("exporter")
    prometheus.parse_listen(args.listen)  # a bad address is a usage error before anything
    logging.basicConfig(format="sfcframe exporter: %(message)s", stream=sys.stderr)
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        prometheus.serve(args.listen, stop, lambda line: print(line, flush=True))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return 0


def _set(args: argparse.Namespace) -> int:
    from sfcframe.runtime.instance import read_settings, read_static, set_settings

    _needs_root("set")
    assignments = list(args.settings)
    if args.from_file:
        from sfcframe.runtime.stage_settings import read_file

        assignments += read_file(args.from_file)
    record = set_settings(args.name, assignments, static_header=args.static_header)
    now = read_settings(record)
    print(f"{record.name}: strict={str(now['strict']).lower()} ({now['source']})")
    static = read_static(record)
    if static is not None:
        print(f"{record.name}: static header {static['header'] or 'none'} ({static['source']})")
    staged = [a.split("=", 1)[0].strip() for a in assignments if "." in a.split("=", 1)[0]]
    if staged:  # which were set, never the values (a stage may keep secrets there)
        print(f"{record.name}: set {', '.join(staged)}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from sfcframe.runtime.errors import AttachError
    from sfcframe.runtime.instance import down

    _needs_root("down")
    report = down(args.name)
    if not report.running:
        print(f"{args.name}: not running")
        return 0
    for line in report.done:
        print(f"{args.name}: {line}")
    for line in report.notes:
        print(f"{args.name}: note: {line}")
    if report.failures:
        for line in report.failures[:-1]:
            print(f"sfcframe: {args.name}: {line}", file=sys.stderr)
        raise AttachError(
            f"{args.name}: down incomplete: {report.failures[-1]}; the state is kept, "
            f"run `sfcframe down {args.name}` again"
        )
    for line in report.unrestored:
        print(f"sfcframe: {args.name}: not restored: {line}", file=sys.stderr)
    if report.unrestored:
        raise AttachError(f"{args.name}: down, but {len(report.unrestored)} interface(s) not "
                          "as up found them (above)")
    print(f"{args.name} down")
    return 0


def _size(args: argparse.Namespace) -> int:
    from sfcframe.runtime import sizing
    from sfcframe.runtime.errors import ConfigError

    if args.observe:
        if args.rate or args.delay:
            raise ConfigError("size: give either --observe NAME or --rate and --delay, not both")
        from sfcframe.runtime import health
        from sfcframe.runtime.observe import observe

        _needs_root("size --observe")
        record = health.require(args.observe)
        def progress(elapsed: float, samples: int, peak: int) -> None:
            print(f"observing {args.observe}: {elapsed:.0f}/{args.seconds:g} s, {samples:,} "
                  f"samples, peak {peak:,} in flight so far", file=sys.stderr, flush=True)

        print(f"observing {args.observe} for {args.seconds:g} s (every {args.interval:g} s) ...",
              file=sys.stderr, flush=True)
        obs = observe(args.observe, args.seconds, args.interval, progress=progress)
        from sfcframe.spec import spec_params

        # the build the instance runs (typed, as recorded), --param over it
        params = {**spec_params(record.spec, stages=False), **dict(args.param)}
        margin = sizing.DEFAULT_OBSERVED_MARGIN if args.margin is None else args.margin
        result = sizing.size_observed(obs.as_dict(), record.encap, record.key, params, margin)
    else:
        if not (args.rate and args.delay):
            raise ConfigError("size: --rate and --delay are required (or --observe NAME)")
        margin = sizing.DEFAULT_MARGIN if args.margin is None else args.margin
        result = sizing.size(args.rate, args.delay, args.encap, args.key, dict(args.param),
                             margin)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        print(sizing.render_text(result, verbose=args.verbose))
    return 0


HANDLERS = {
    "up": _up,
    "list": _list,
    "stats": _stats,
    "set": _set,
    "exporter": _exporter,
    "cache": _cache,
    "down": _down,
    "size": _size,
}
