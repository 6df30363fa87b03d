"""PNG plots of result documents (matplotlib, Agg backend; extra ``bench``)."""

from __future__ import annotations

from pathlib import Path

from sfcframe.errors import SfcError

COST_X = ("0", "1", "2", "5", "10", "MD1", "MD2")
INGRESS_TARGET_NS = 250
EGRESS_TARGET_NS = 350
ENTRY_TARGET_BYTES = 128
ASSOC_TARGET_BYTES = 80


class PlotUnavailable(SfcError):
    exit_code = 2


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(
            "matplotlib is not installed: pip install 'sfcframe[bench]' "
            "(scripts/setup.sh installs it)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series_name(row: dict) -> str:
    name = "tcpip" if row["key"] == "tcpip" else "metadata (mark)"
    if row["encap"] == "mpls" and row["params"].get("pop") == 0:
        name += " pop=0"
    return name


def _xlabel(x: str) -> str:
    return f"NSH {x}" if x.startswith("MD") else f"{x} lbl"


def plot_cost(doc: dict, path: Path) -> Path:
    plt = _pyplot()
    rows = doc["results"]["rows"]
    series: dict[str, dict[str, dict]] = {}
    for row in rows:
        series.setdefault(_series_name(row), {})[row["x"]] = row
    xs = [x for x in COST_X if any(x in s for s in series.values())]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=False)
    width = 0.8 / max(1, len(series))
    floors = doc["results"]["floors"]
    for ax, direction, target, floor in (
        (axes[0], "ingress", INGRESS_TARGET_NS, floors["xdp"]),
        (axes[1], "egress", EGRESS_TARGET_NS, floors["tc"]),
    ):
        for i, (name, by_x) in enumerate(sorted(series.items())):
            pos, med, lo, hi, gross = [], [], [], [], []
            for j, x in enumerate(xs):
                row = by_x.get(x)
                if not row or direction not in row["directions"]:
                    continue
                net = row["directions"][direction]["net"]["per_round_median"]
                pos.append(j + (i - (len(series) - 1) / 2) * width)
                med.append(net["median"])
                lo.append(net["median"] - net["min"])
                hi.append(net["max"] - net["median"])
                gross.append(row["directions"][direction]["gross"]["per_round_median"]["median"])
            ax.bar(pos, med, width, yerr=[lo, hi], capsize=2, label=f"{name} (net)")
            ax.scatter(pos, gross, marker="_", color="black", s=60, zorder=3,
                       label="gross" if i == 0 else None)
        ax.axhline(target, color="red", linestyle="--", linewidth=1,
                   label=f"target {target} ns (net)")
        ax.set_xticks(range(len(xs)), [_xlabel(x) for x in xs])
        ax.set_ylabel("ns / packet")
        fm = floor["per_round_median"]
        ax.set_title(f"{direction} ({'XDP' if direction == 'ingress' else 'TC'}): net of no-op "
                     f"floor {fm['median']:.0f} ns [{fm['min']:.0f}-{fm['max']:.0f}]",
                     fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[1].legend(fontsize=8, loc="upper left")
    params = doc["parameters"]
    fig.suptitle(
        f"sfcframe per-packet cost, BPF_PROG_TEST_RUN repeat=1 on fresh packets "
        f"({params['packets']} packets x {params['rounds']} rounds; bars: median of round "
        f"medians, whiskers: min-max across rounds)\n{doc['machine']['cpu_model']}, "
        f"{doc['machine']['cores']} cores, Linux {doc['machine']['kernel']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_breakdown(doc: dict, path: Path) -> Path | None:
    comparison = doc["results"].get("comparison")
    if not comparison:
        return None
    plt = _pyplot()
    items = [c for c in comparison]
    labels = [f"{c['variant'].split('~', 1)[1]} @{c['variant'].split('~')[0].rsplit('-', 1)[1]}"
              f" ({c['direction']})" for c in items]
    med = [c["delta_ns"]["median"] for c in items]
    lo = [c["delta_ns"]["median"] - c["delta_ns"]["min"] for c in items]
    hi = [c["delta_ns"]["max"] - c["delta_ns"]["median"] for c in items]
    colors = {"component": "tab:gray", "candidate": "tab:green", "reference": "tab:orange",
              "control": "tab:blue"}
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(items) + 1.5))
    ypos = list(range(len(items)))
    ax.barh(ypos, med, xerr=[lo, hi], capsize=2, color=[colors[c["kind"]] for c in items])
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("net ns/packet, variant minus unmodified build (median of per-round "
                  "differences, whiskers min-max)")
    ax.set_title("Where the cost goes: MPLS variants vs the unmodified build\n(grey: step "
                 "removed, green: candidate change, orange: reference, blue: A/A control)",
                 fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_memory(doc: dict, path: Path) -> Path:
    plt = _pyplot()
    rows = doc["results"]["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    styles = {"assoc": "-", "lru": "-.", "ring": "--"}
    for key, cache in sorted({(r["key"], r.get("cache", "lru")) for r in rows}):
        for size in sorted({r["cache_size"] for r in rows}):
            pts = sorted((r["params"]["max_labels"], r["bytes_per_entry"]) for r in rows
                         if r["encap"] == "mpls" and r["key"] == key
                         and r.get("cache", "lru") == cache and r["cache_size"] == size
                         and r["params"].get("pop", 1) == 1
                         and r["params"].get("family", "ipv4") == "ipv4")
            if len(pts) > 1:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        linestyle=styles.get(cache, "-"),
                        label=f"{key} cache={cache}, cache_size {size}")
            elif pts:  # one depth only (the large sizes): a marker
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="D", linestyle="",
                        label=f"{key} cache={cache}, cache_size {size}")
    ax.axhline(ENTRY_TARGET_BYTES, color="red", linestyle="--", linewidth=1,
               label=f"target {ENTRY_TARGET_BYTES} B (max_labels <= 10)")
    ax.axhline(ASSOC_TARGET_BYTES, color="darkred", linestyle=":", linewidth=1,
               label=f"cache=assoc target {ASSOC_TARGET_BYTES} B (10 labels)")
    ax.axvline(10, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("MPLS max_labels (pop=1)")
    ax.set_ylabel("bytes per entry (memlock / entries)")
    ax.set_title("MPLS cache map, as the kernel charges it", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    nsh = sorted((r for r in rows if r["encap"] == "nsh"),
                 key=lambda r: (r["key"], r.get("cache", "lru"), r["cache_size"],
                                r["params"]["max_md_bytes"]))
    labels = [f"{r['key'][:4]} {r.get('cache', 'lru')}\n{r['cache_size']}\n"
              f"md {r['params']['max_md_bytes']}" for r in nsh]
    ax.bar(range(len(nsh)), [r["bytes_per_entry"] for r in nsh], color="tab:purple")
    ax.set_xticks(range(len(nsh)), labels, fontsize=7)
    ax.set_title("NSH cache map (max_md_bytes)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"sfcframe cache memory (Linux {doc['machine']['kernel']})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_evict(doc: dict, path: Path) -> Path:
    """Live entries lost per level of fill, one line per cache kind and size (log scale;
    0 drawn at the bottom)."""
    plt = _pyplot()
    rows = doc["results"]["rows"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    floor = 0.5
    for kind, size in sorted({(r["cache"], r["cache_size"]) for r in rows}):
        pts = sorted((r["level"] * 100, r["lost"]) for r in rows
                     if r["cache"] == kind and r["cache_size"] == size)
        ax.plot([p[0] for p in pts], [max(p[1], floor) for p in pts], marker="o",
                linestyle="-" if kind == "assoc" else "-.",
                label=f"cache={kind}, cache_size {size:,}")
        for x, lost in pts:
            ax.annotate(f"{lost:,}", (x, max(lost, floor)), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor * 0.8)
    ax.set_xlabel("live entries, % of cache_size")
    inserts = doc["parameters"]["inserts"]
    ax.set_ylabel(f"live entries lost in {inserts:,} inserts (0 at the bottom)")
    ax.set_title("Eviction quality: FIFO churn at a fixed fill, both CPUs", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


# ---- traffic benchmarks (sfcframe.bench.scenarios) -------------------------------------------


def _errbar(ax, xs, spreads, **kw):
    pts = [(x, s) for x, s in zip(xs, spreads) if s]
    if not pts:
        return
    med = [s["median"] for _, s in pts]
    ax.errorbar([x for x, _ in pts], med,
                yerr=[[s["median"] - s["min"] for _, s in pts], [s["max"] - s["median"] for _, s in pts]],
                capsize=3, **kw)


def _save(fig, plt, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_drop(doc: dict, path: Path) -> Path:
    plt = _pyplot()
    s = doc["results"]["summary"]
    items = [(f"in {k}", v) for k, v in s["ingress"].items() if v and v["max"]]
    items += [(f"out {k}", v) for k, v in s["egress"].items() if v and v["max"]]
    items += [("stale entries", s["stale_entries"]), ("VNF dropped", s["vnf_dropped"])]
    items = [(n, v) for n, v in items if v]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    pos = range(len(items))
    ax.bar(pos, [v["median"] for _, v in items],
           yerr=[[v["median"] - v["min"] for _, v in items], [v["max"] - v["median"] for _, v in items]],
           capsize=3, color="tab:blue")
    ax.set_xticks(list(pos), [n for n, _ in items], rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("packets / entries (median, min-max)")
    g = s["goodput_mbps"]
    ax.set_title(f"Drop VNF (1% random): proxy counters; restored/cached "
                 f"{s['restored_over_cached']['median']:.4f}, goodput {g['median']:.0f} Mb/s "
                 f"({doc['parameters']['runs']} runs x {doc['parameters']['seconds']:g} s)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, plt, path)


def _size_checks(ax, rows: list[dict], field: str) -> None:
    """The runs at `sfcframe size`'s recommendations, one star each."""
    for r in rows:
        observed = r["role"] == "size-observed"
        _errbar(ax, [r["cache_size"]], [r[field]], marker="*", markersize=12,
                linestyle="none", color="tab:purple" if observed else "red",
                label="`sfcframe size --observe`" if observed
                else "`sfcframe size` (nominal delay)")


def plot_delay(doc: dict, path: Path) -> Path:
    plt = _pyplot()
    rows = sorted(doc["results"]["table"], key=lambda r: r["cache_size"])
    sweep = [r for r in rows if r["role"] == "sweep"]
    check = [r for r in rows if r["role"] != "sweep"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    _errbar(ax, [r["cache_size"] for r in sweep], [r["misses"] for r in sweep], marker="o",
            label="egress misses (sweep)")
    if check:
        _size_checks(ax, check, "misses")
    infl = [r["little_in_flight"] for r in sweep if r["little_in_flight"]]
    if infl:
        ax.axvline(max(infl), color="gray", linestyle=":", label="in flight (Little's law)")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("cache_size (entries)")
    ax.set_ylabel("egress misses (not_cached)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    _errbar(ax, [r["cache_size"] for r in sweep], [r["goodput_mbps"] for r in sweep], marker="o",
            color="tab:green", label="sweep")
    if check:
        _size_checks(ax, check, "goodput_mbps")
    ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("cache_size (entries)")
    ax.set_ylabel("goodput Mb/s")
    ax.grid(alpha=0.3)
    p = doc["parameters"]
    fig.suptitle(f"Delay VNF ({p['delay_ms']:g} ms, user space): misses and goodput vs cache size "
                 f"({p['runs']} run(s) x {p['seconds']:g} s per size)", fontsize=10)
    return _save(fig, plt, path)


def plot_collisions(doc: dict, path: Path) -> Path:
    plt = _pyplot()
    runs = doc["results"]["runs"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(range(1, len(runs) + 1), [r["collisions_per_million"] or 0 for r in runs], color="tab:orange")
    ax.axhline(20, color="red", linestyle="--", linewidth=1, label="target 20 per million")
    ax.set_xlabel("run")
    ax.set_ylabel("ingress collision drops per million packets")
    p = doc["parameters"]
    where = (f"SRv6, inner {p['inner']}" if p.get("encap") == "srv6" else "MPLS, forwarding VNF")
    ax.set_title(f"{p['key']} key under bulk TCP ({where})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, plt, path)


# ---- goodput vs label depth (sfcframe.bench.goodput) ------------------------------------------

GOODPUT_COLORS = {"control": "black", "static": "tab:orange", "tcpip": "tab:blue",
                  "tcpip-assoc": "tab:purple", "metadata": "tab:green"}


def plot_goodput(doc: dict, path: Path) -> Path:
    """Left: goodput vs labels per row (the paper's Fig. 4); middle: kernel CPU-seconds
    per million packets vs labels; right: the hook comparison at compare_labels."""
    from sfcframe.bench.goodput import ROWS as GOODPUT_ROWS

    plt = _pyplot()
    p = doc["parameters"]
    cells = doc["results"]["cells"]
    sweep = [c for c in cells if c["hook"] == p["hook"]]
    labels = p["labels"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [3, 3, 2]})
    for ax, what, ylabel in ((axes[0], "goodput_mbps", "goodput Mb/s (iperf3, 2 streams)"),
                             (axes[1], "cpu_s_per_mpkt",
                              "system + softirq CPU-s per million packets")):
        for row in GOODPUT_ROWS:
            mine = sorted((c for c in sweep if c["row"] == row), key=lambda c: c["labels"])
            color = GOODPUT_COLORS.get(row)
            if not mine:
                continue
            if row == "control":
                s = mine[0]["summary"][what]
                if not s:
                    continue
                ax.axhline(s["median"], color=color, linestyle="--", linewidth=1,
                           label="control (no proxy, no-op programs, no labels)")
                ax.axhspan(s["min"], s["max"], color=color, alpha=0.08)
                continue
            _errbar(ax, [c["labels"] for c in mine], [c["summary"][what] for c in mine],
                    marker="o", color=color, label=row)
        ax.set_xticks(labels)
        ax.set_xlabel("MPLS labels stamped by the SFF")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title(f"SFC goodput vs label stack depth (hook {p['hook']})", fontsize=10)
    axes[1].set_title("kernel CPU per packet (all CPUs, traffic window)", fontsize=10)
    ax = axes[2]
    comp = doc["results"].get("hook_comparison", {})
    hooks = [h for h in p["hooks"] if any(h in v["hooks"] for v in comp.values())]
    rows = [r for r in GOODPUT_ROWS if r in comp]
    width = 0.8 / max(1, len(hooks))
    for i, h in enumerate(hooks):
        pos, med, lo, hi = [], [], [], []
        for j, r in enumerate(rows):
            s = comp[r]["hooks"].get(h, {}).get("goodput_mbps")
            if not s:
                continue
            pos.append(j + (i - (len(hooks) - 1) / 2) * width)
            med.append(s["median"])
            lo.append(s["median"] - s["min"])
            hi.append(s["max"] - s["median"])
        ax.bar(pos, med, width, yerr=[lo, hi], capsize=2, label=h)
    ax.set_xticks(range(len(rows)), rows, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("goodput Mb/s")
    ax.set_title(f"ingress hooks at {p['compare_labels']} labels (control: 0)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    m = doc["machine"]
    fig.suptitle(f"sfcframe bench goodput: {p['runs']} run(s) x {p['seconds']:g} s per cell, "
                 f"median with min-max; {m['cpu_model']}, {m['cores']} cores, Linux {m['kernel']}",
                 fontsize=10)
    return _save(fig, plt, path)


def plot_srv6(doc: dict, path: Path) -> Path:
    """Goodput and kernel CPU per packet per row, grouped by inner family (bench srv6)."""
    plt = _pyplot()
    p = doc["parameters"]
    cells = doc["results"]["cells"]
    inners = [i for i in p["inners"] if any(c["inner"] == i for c in cells)]
    rows = [r for r in p["rows"] if any(c["row"] == r for c in cells)]
    by = {(c["row"], c["inner"]): c["summary"] for c in cells}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(rows))
    for ax, what, ylabel in ((axes[0], "goodput_mbps", "goodput Mb/s (iperf3, 2 streams)"),
                             (axes[1], "cpu_s_per_mpkt", "system + softirq CPU-s per million packets")):
        for i, row in enumerate(rows):
            pos, med, lo, hi = [], [], [], []
            for j, inner in enumerate(inners):
                s = (by.get((row, inner)) or {}).get(what)
                if not s:
                    continue
                pos.append(j + (i - (len(rows) - 1) / 2) * width)
                med.append(s["median"])
                lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"])
            ax.bar(pos, med, width, yerr=[lo, hi], capsize=2, label=row,
                   color=GOODPUT_COLORS.get(row))
        ax.set_xticks(range(len(inners)), [f"inner {i}" for i in inners])
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("SRv6 goodput: proxy + VNF vs the kernel's End", fontsize=10)
    axes[1].set_title("kernel CPU per packet (all CPUs, traffic window)", fontsize=10)
    m = doc["machine"]
    fig.suptitle(f"sfcframe bench srv6: {p['runs']} run(s) x {p['seconds']:g} s per cell, "
                 f"median with min-max; {m['cpu_model']}, {m['cores']} cores, Linux {m['kernel']}",
                 fontsize=10)
    return _save(fig, plt, path)
