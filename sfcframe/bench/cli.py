"""``sfcframe bench``: the command line of the benchmarks.

sfcframe/cli.py wires it in through its ``PACKAGE_COMMANDS`` (``add_bench_parser``
and ``run_bench``, imported only when the command line names ``bench``).

A new benchmark registers itself in :data:`BENCHMARKS` (name -> (add
arguments, run)); ``python -m sfcframe.bench`` runs the same commands
standalone. Importing this module is cheap: everything heavy is imported when
a benchmark runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from sfcframe.bench.scenarios import COLLISION_RUNS, FLOW_COLLISION_RUNS

DEFAULT_OUT = Path("bench-results")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="directory for <name>.json and <name>.png (default bench-results/)")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")


def _say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# ---- cost --------------------------------------------------------------------------------


def _add_cost(parser: argparse.ArgumentParser) -> None:
    from sfcframe.bench import cost  # light: no kernel work at import

    parser.add_argument("--repeat", type=_positive, default=cost.DEFAULT_ROUNDS, metavar="N",
                        help="rounds of the whole measurement (default %(default)s); every "
                        "BPF_PROG_TEST_RUN itself uses repeat=1")
    parser.add_argument("--packets", type=_positive, default=cost.DEFAULT_PACKETS, metavar="N",
                        help="fresh packets per row and round (default %(default)s)")
    parser.add_argument("--in-flight", type=_positive, default=cost.DEFAULT_IN_FLIGHT,
                        metavar="N", help="packets ingress handles before egress takes them "
                        "back, i.e. cache entries in flight (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=cost.DEFAULT_WARMUP, metavar="N",
                        help="discarded packets per row before the first round "
                        "(default %(default)s)")
    parser.add_argument("--batch", type=_positive, default=cost.DEFAULT_BATCH, metavar="N",
                        help="repeat of the batched cross-checks of non-modifying paths "
                        "(default %(default)s)")
    parser.add_argument("--payload", type=int, default=cost.DEFAULT_PAYLOAD, metavar="BYTES",
                        help="TCP payload of every packet (default %(default)s)")
    parser.add_argument("--cpu", type=int, help="CPU to pin the harness to (default: the last)")
    parser.add_argument("--rows", metavar="IDS",
                        help="comma-separated row ids or id prefixes (default: every row)")
    parser.add_argument("--breakdown", action="store_true",
                        help="measure variant builds (a step removed, candidate data-path "
                        "changes, an A/A control) against the unmodified MPLS rows in the same "
                        "rounds; writes cost-breakdown.json/.png")
    parser.add_argument("--keys", action="store_true",
                        help="the keys' rows instead (every key on its own inner packets, auto "
                        "on each protocol, behind 10 MPLS labels); writes cost-keys.json/.png "
                        "with auto's dispatch overhead against the single keys")
    parser.add_argument("--seed", type=int, default=1, help="row order seed (default 1)")
    parser.add_argument("--cache-size", type=_positive, metavar="N",
                        help="cache_size of every build (default: each build's own); how "
                             "far the table outgrows the CPU caches moves the cache rows most")


def _pick_rows(spec: str | None, keys: bool = False):
    from sfcframe.bench.cost import default_rows, key_rows
    from sfcframe.errors import UsageError

    rows = key_rows() if keys else default_rows()
    if not spec:
        return rows
    wanted = [w.strip() for w in spec.split(",") if w.strip()]
    picked = [r for r in rows if any(r.id == w or r.id.startswith(w) for w in wanted)]
    if not picked:
        raise UsageError(f"no cost row matches {spec!r}; rows: {', '.join(r.id for r in rows)}")
    return picked


def _run_cost(args: argparse.Namespace) -> int:
    from sfcframe.bench import cost, results

    rows_spec = args.rows
    if args.breakdown and not rows_spec:
        from sfcframe.bench.breakdown import BASELINE_ROWS

        rows_spec = ",".join(BASELINE_ROWS)
    if args.breakdown and args.keys:
        from sfcframe.errors import UsageError

        raise UsageError("bench cost: --breakdown and --keys are separate runs")
    name = "cost-breakdown" if args.breakdown else "cost-keys" if args.keys else "cost"
    doc = cost.run_cost(
        packets=args.packets, rounds=args.repeat, batch=args.batch, warmup=args.warmup,
        payload=args.payload, cpu=args.cpu, in_flight=args.in_flight, seed=args.seed,
        rows=_pick_rows(rows_spec, args.keys), breakdown=args.breakdown, progress=_say,
        cache_size=args.cache_size,
    )
    path = results.write(doc, args.out, name)
    print(f"wrote {path}")
    if not args.no_plot:
        from sfcframe.bench import plot

        png = (plot.plot_breakdown(doc, args.out / f"{name}.png") if args.breakdown
               else plot.plot_cost(doc, args.out / f"{name}.png"))
        print(f"wrote {png}")
    from sfcframe.bench.report import (auto_overhead_table, breakdown_table, cost_table,
                                       targets_table)

    print(cost_table(doc))
    print(breakdown_table(doc) if args.breakdown else auto_overhead_table(doc) if args.keys
          else targets_table(doc))
    bad = {k: v for k, v in doc["results"]["problems"].items() if "~" not in k}
    return 1 if bad else 0


# ---- memory ------------------------------------------------------------------------------


def _add_memory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-sizes", type=_int_list, default=[10000, 16384], metavar="N,N",
                        help="cache_size values (default 10000,16384)")


def _run_memory(args: argparse.Namespace) -> int:
    from sfcframe.bench import memory

    from sfcframe.bench.report import memory_table

    doc = memory.run_memory(cache_sizes=args.cache_sizes, progress=_say)
    return _publish(args, doc, "memory", memory_table)


def _publish(args: argparse.Namespace, doc: dict, name: str, table: Callable[[dict], str]) -> int:
    """Write <out>/<name>.json and (unless --no-plot) its plot; print its table and targets."""
    from sfcframe.bench import plot, results
    from sfcframe.bench.report import targets_table

    print(f"wrote {results.write(doc, args.out, name)}")
    if not args.no_plot:
        print(f"wrote {getattr(plot, f'plot_{name}')(doc, args.out / f'{name}.png')}")
    print(table(doc))
    print(targets_table(doc))
    return 0


# ---- evict -------------------------------------------------------------------------------


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _add_evict(parser: argparse.ArgumentParser) -> None:
    from sfcframe.bench import evict

    parser.add_argument("--levels", type=_float_list, default=list(evict.DEFAULT_LEVELS),
                        metavar="F,F", help="fills as fractions of cache_size "
                        "(default %(default)s)")
    parser.add_argument("--kinds", default=",".join(evict.DEFAULT_KINDS), metavar="K,K",
                        help="cache kinds (default %(default)s)")
    parser.add_argument("--cache-sizes", type=_int_list, default=list(evict.DEFAULT_CACHE_SIZES),
                        metavar="N,N", help="cache_size values (default %(default)s)")
    parser.add_argument("--inserts", type=_positive, default=evict.DEFAULT_INSERTS,
                        help="inserts per level, both CPUs together (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1)


def _run_evict(args: argparse.Namespace) -> int:
    from sfcframe.bench import evict

    from sfcframe.bench.report import evict_table

    doc = evict.run_evict(kinds=[k.strip() for k in args.kinds.split(",") if k.strip()],
                          levels=args.levels, cache_sizes=args.cache_sizes,
                          inserts=args.inserts, seed=args.seed, progress=_say)
    return _publish(args, doc, "evict", evict_table)


# ---- traffic benchmarks through the demo testbed (sfcframe.bench.scenarios) ---------------


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_traffic(parser: argparse.ArgumentParser, runs: int) -> None:
    parser.add_argument("--seconds", type=_positive_float, default=10.0,
                        help="traffic per demo run (default %(default)s)")
    parser.add_argument("--runs", type=_positive, default=runs,
                        help="demo runs (default %(default)s)")


def _add_drop(parser: argparse.ArgumentParser) -> None:
    _add_traffic(parser, 3)


def _add_delay(parser: argparse.ArgumentParser) -> None:
    _add_traffic(parser, 1)
    parser.add_argument("--cache-sizes", type=_int_list, default=[1000, 2500, 5000, 10000, 100000],
                        metavar="N,N", help="cache_size values (default 1000,2500,5000,10000,100000)")
    parser.add_argument("--delay-ms", type=_positive_float, default=5.0,
                        help="delay VNF hold time (default %(default)s)")


def _add_collisions(parser: argparse.ArgumentParser) -> None:
    _add_traffic(parser, 3)
    parser.add_argument("--encap", choices=("mpls", "srv6"), default="mpls",
                        help="testbed: mpls (the demo's, 10 labels; default) or srv6 (the "
                        "kernel-peer testbed: H.Encaps, the srv6 proxy, End.DX4/End.DT6)")
    parser.add_argument("--inner", choices=("ipv4", "ipv6"), default="ipv4",
                        help="inner packets (ipv6: --encap srv6, key tcpip with family=ipv6; "
                        "default ipv4)")
    parser.add_argument("--ingress", choices=("tc", "xdp"), default="tc",
                        help="the proxy's ingress hook (default tc, the demo's)")
    parser.add_argument("--traffic", choices=("tcp", "rtp", "udp", "esp", "icmp", "udpsame",
                                              "mixed"),
                        default="tcp",
                        help="tcp (bulk iperf3, the tcpip key; default) or a flow key's traffic "
                        "on the MPLS testbed: rtp (rtp key, 50 streams), udp (udp key, iperf3 "
                        "-u -b 0), esp (esp key, bulk), icmp (icmp key, ping -f), udpsame (udp key, one "
                        "datagram repeated unchanged: its worst case), mixed (auto)")
    parser.add_argument("--vnf", choices=("forward", "delay"), default="forward",
                        help="--traffic other than tcp: the VNF (default forward; delay holds "
                        "every packet 3 ms in user space)")


def _finish_traffic(args, doc: dict, name: str) -> int:
    from sfcframe.bench import report, results

    print(f"wrote {results.write(doc, args.out)}")
    if not args.no_plot:
        from sfcframe.bench import plot

        print(f"wrote {TRAFFIC_PLOTS[name](plot)(doc, args.out / f'{name}.png')}")
    print(report.SECTIONS[name](doc))
    return 0


def _run_drop(args: argparse.Namespace) -> int:
    from sfcframe.bench import scenarios

    return _finish_traffic(args, scenarios.run_drop(args.seconds, args.runs, _say), "drop")


def _run_delay(args: argparse.Namespace) -> int:
    from sfcframe.bench import scenarios

    doc = scenarios.run_delay(args.cache_sizes, args.delay_ms, args.seconds, args.runs, _say)
    return _finish_traffic(args, doc, "delay")


def _run_collisions(args: argparse.Namespace) -> int:
    from sfcframe.bench import scenarios

    doc = scenarios.run_collisions(args.seconds, args.runs, _say, encap=args.encap,
                                   inner=args.inner, ingress=args.ingress, traffic=args.traffic,
                                   vnf=args.vnf)
    return _finish_traffic(args, doc, doc["benchmark"])


# ---- goodput vs label depth, CPU per packet, ingress hooks (sfcframe.bench.goodput) --------


def _label_list(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0 or max(values) > 32:
        raise argparse.ArgumentTypeError(f"expected label depths within 0..32, got {text!r}")
    return values


def _name_list(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [n for n in names if n not in choices]
        if not names or bad:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected a comma-separated subset of {','.join(choices)}")
        return list(dict.fromkeys(names))
    return parse


def _add_goodput(parser: argparse.ArgumentParser) -> None:
    from sfcframe.bench import goodput as G  # light: no kernel work at import

    parser.add_argument("--labels", type=_label_list, default=list(G.DEFAULT_LABELS),
                        metavar="N,N", help="MPLS label depths of the sweep (default "
                        f"{','.join(map(str, G.DEFAULT_LABELS))})")
    parser.add_argument("--runs", type=_positive, default=G.DEFAULT_RUNS,
                        help="runs (rounds) per cell (default %(default)s)")
    parser.add_argument("--seconds", type=_positive_float, default=G.DEFAULT_SECONDS,
                        help="iperf3 time per run (default %(default)s)")
    parser.add_argument("--rows", type=_name_list(G.ROWS), default=list(G.DEFAULT_ROWS),
                        metavar="ROWS", help=f"rows, of {','.join(G.ROWS)} (default "
                        f"{','.join(G.DEFAULT_ROWS)}; tcpip-assoc: the tcpip proxy with "
                        "cache=assoc)")
    parser.add_argument("--hook", choices=G.HOOKS, default=G.DEFAULT_HOOK,
                        help="ingress hook of the label sweep (default %(default)s)")
    parser.add_argument("--hooks", type=_name_list(G.HOOKS), default=list(G.HOOKS),
                        metavar="HOOKS", help="hooks of the comparison at --compare-labels "
                        f"(default {','.join(G.HOOKS)}; only --hook: no comparison)")
    parser.add_argument("--compare-labels", type=int, metavar="N",
                        help="label depth of the hook comparison (default 10, or the deepest "
                        "of --labels)")
    parser.add_argument("--seed", type=int, default=1, help="run order seed (default 1)")


def _run_goodput(args: argparse.Namespace) -> int:
    from sfcframe.bench import goodput

    doc = goodput.run_goodput(labels=args.labels, runs=args.runs, seconds=args.seconds,
                              rows=args.rows, hook=args.hook, hooks=args.hooks,
                              compare_labels=args.compare_labels, seed=args.seed, progress=_say)
    code = _finish_traffic(args, doc, "goodput")
    return code if doc["results"]["teardown"]["clean"] else 1


def _add_srv6(parser: argparse.ArgumentParser) -> None:
    from sfcframe.bench import srv6 as S  # light: no kernel work at import

    parser.add_argument("--runs", type=_positive, default=S.DEFAULT_RUNS,
                        help="runs (rounds) per cell (default %(default)s)")
    parser.add_argument("--seconds", type=_positive_float, default=S.DEFAULT_SECONDS,
                        help="iperf3 time per run (default %(default)s)")
    parser.add_argument("--rows", type=_name_list(S.ROWS), default=list(S.ROWS), metavar="ROWS",
                        help=f"rows (default {','.join(S.ROWS)}; control: the kernel's End, "
                        "no proxy)")
    parser.add_argument("--inner", type=_name_list(S.INNERS), default=list(S.INNERS),
                        metavar="FAMILIES", help=f"inner packet families (default "
                        f"{','.join(S.INNERS)})")
    parser.add_argument("--seed", type=int, default=1, help="run order seed (default 1)")


def _run_srv6(args: argparse.Namespace) -> int:
    from sfcframe.bench import srv6

    doc = srv6.run_srv6(rows=args.rows, inners=args.inner, runs=args.runs,
                        seconds=args.seconds, seed=args.seed, say=_say)
    return _finish_traffic(args, doc, "srv6")

#: result names of the collision benchmarks (one per testbed and inner family)
COLLISION_NAMES = tuple(COLLISION_RUNS.values()) + tuple(FLOW_COLLISION_RUNS.values())

TRAFFIC_PLOTS = {
    "drop": lambda plot: plot.plot_drop,
    "delay": lambda plot: plot.plot_delay,
    **{name: (lambda plot: plot.plot_collisions) for name in COLLISION_NAMES},
    "goodput": lambda plot: plot.plot_goodput,
    "srv6": lambda plot: plot.plot_srv6,
}


# ---- report ------------------------------------------------------------------------------


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=DEFAULT_OUT,
                        help="directory holding <name>.json (default bench-results/)")
    parser.add_argument("--markdown", type=Path, default=Path("BENCHMARKS.md"),
                        help="file whose generated sections are rewritten (default BENCHMARKS.md)")
    parser.add_argument("--no-plot", action="store_true",
                        help="do not redraw bench-results/*.png from the JSON")


def _run_report(args: argparse.Namespace) -> int:
    from sfcframe.bench.report import update_markdown

    if not args.no_plot:
        from sfcframe.bench import plot, results

        for name, draw in (("cost", plot.plot_cost), ("cost-keys", plot.plot_cost),
                           ("cost-breakdown", plot.plot_breakdown),
                           ("memory", plot.plot_memory), ("evict", plot.plot_evict),
                           ("drop", plot.plot_drop),
                           ("delay", plot.plot_delay),
                           *((c, plot.plot_collisions) for c in COLLISION_NAMES),
                           ("goodput", plot.plot_goodput), ("srv6", plot.plot_srv6)):
            source = args.results / f"{name}.json"
            if source.exists():
                print(f"wrote {draw(results.load(source), args.results / f'{name}.png')}")
    changed = update_markdown(args.markdown, args.results)
    print(f"{'updated' if changed else 'unchanged'}: {args.markdown}")
    return 0


#: name -> (help, add arguments, run, takes --out/--no-plot)
BENCHMARKS: dict[str, tuple[str, Callable, Callable, bool]] = {
    "cost": ("per-packet cost (ns) of ingress and egress through BPF_PROG_TEST_RUN",
             _add_cost, _run_cost, True),
    "memory": ("cache memory per entry and per map, as the kernel charges it",
               _add_memory, _run_memory, True),
    "evict": ("eviction quality: live entries lost at 50/75/90/100 %% fill, cache=assoc vs "
              "cache=lru (the build's own cache functions on both CPUs)",
              _add_evict, _run_evict, True),
    "drop": ("the paper's Table I: proxy counters behind a 1%%-drop VNF (demo testbed)",
             _add_drop, _run_drop, True),
    "delay": ("the paper's Table II: misses and goodput vs cache size behind a delaying VNF, "
              "and the check of `sfcframe size`", _add_delay, _run_delay, True),
    "collisions": ("key collision drops per million packets: tcpip under bulk TCP, or a flow "
                   "key under its real traffic (--traffic)",
                   _add_collisions, _run_collisions, True),
    "goodput": ("the paper's Fig. 4: goodput vs MPLS label depth per proxy row (control, "
                "static, tcpip, metadata), kernel CPU per packet, ingress hooks compared "
                "(demo testbed)", _add_goodput, _run_goodput, True),
    "srv6": ("SRv6 End.AD: goodput and kernel CPU per packet, proxy + VNF against the "
             "kernel's End, between the kernel's H.Encaps and End.DX4/End.DT6",
             _add_srv6, _run_srv6, True),
    "report": ("redraw the plots and rewrite the generated tables of BENCHMARKS.md from "
               "bench-results/*.json",
               _add_report, _run_report, False),
}

EPILOG = """\
examples:
  sfcframe bench cost                      # every row, 5 rounds x 1000 packets
  sfcframe bench cost --breakdown          # variant builds: where the cost goes
  sfcframe bench cost --rows mpls-tcpip --repeat 3 --packets 200
  sfcframe bench memory
  sfcframe bench evict                     # live entries lost at 50-100 % fill, assoc vs lru
  sfcframe bench drop --runs 3 --seconds 8 # demo testbed, 1% drop VNF (Table I)
  sfcframe bench delay --seconds 8         # cache sizes vs misses, 5 ms VNF (Table II)
  sfcframe bench collisions --runs 3       # tcpip key collisions under bulk TCP
  sfcframe bench collisions --encap srv6 --inner ipv6   # the same over IPv6 (SRv6 testbed)
  sfcframe bench goodput                   # Fig. 4: goodput vs label depth, CPU/packet,
                                           # hooks compared (~8 min: 3 runs x 5 s per cell)
  sfcframe bench goodput --labels 0,10 --runs 1 --seconds 2 --hooks xdp-native
  sfcframe bench srv6 --runs 3             # SRv6 proxy vs the kernel's End, IPv4 and IPv6
  sfcframe bench report                    # tables of BENCHMARKS.md from the JSON
"""


def add_bench_parser(subparsers, help: str | None = None) -> argparse.ArgumentParser:
    """Register ``bench`` and its benchmarks on an ``add_subparsers()`` object;
    ``help`` is its line in the list of subcommands."""
    bench = subparsers.add_parser(
        "bench",
        help=help,
        description="Measure the generated proxies on this machine. Each benchmark writes "
        "<out>/<name>.json (machine, versions, parameters, method, raw samples, medians "
        "with min-max) and <out>/<name>.png. Needs root (BPF).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    for name, (help_text, add_args, _run, common) in BENCHMARKS.items():
        parser = sub.add_parser(name, help=help_text, description=help_text)
        add_args(parser)
        if common:
            _common(parser)
    bench.set_defaults(bench_parser=bench)
    return bench


def run_bench(args: argparse.Namespace) -> int:
    name = getattr(args, "bench_command", None)
    if not name:
        args.bench_parser.print_help()
        return 2
    return BENCHMARKS[name][2](args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sfcframe.bench``: the same commands without the sfcframe CLI."""
    from sfcframe.errors import SfcError

    argv = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    parser = argparse.ArgumentParser(prog="python -m sfcframe")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_bench_parser(sub)
    args = parser.parse_args(["bench", *argv])
    try:
        return run_bench(args)
    except SfcError as exc:
        if debug:
            raise
        log = getattr(exc, "log", "")
        if log:
            print(log, file=sys.stderr)
        print(f"sfcframe: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
