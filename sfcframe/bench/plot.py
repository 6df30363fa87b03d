"""PNG plots of result documents (matplotlib, Agg backend; extra ``bench``)."""

from __future__ import annotations

from pathlib import Path

from sfcframe.errors import SfcError

COST_X = ("0", "1", "2", "5", "10", "MD1", "MD2")
INGRESS_TARGET_NS = 250
EGRESS_TARGET_NS = 350
ENTRY_TARGET_BYTES = 128


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
    for key in sorted({r["key"] for r in rows}):
        for size in sorted({r["cache_size"] for r in rows}):
            pts = sorted((r["params"]["max_labels"], r["bytes_per_entry"]) for r in rows
                         if r["encap"] == "mpls" and r["key"] == key and r["cache_size"] == size)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        label=f"{key}, cache_size {size}")
    ax.axhline(ENTRY_TARGET_BYTES, color="red", linestyle="--", linewidth=1,
               label=f"target {ENTRY_TARGET_BYTES} B (max_labels <= 10)")
    ax.axvline(10, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("MPLS max_labels (pop=1)")
    ax.set_ylabel("bytes per entry (memlock / max_entries)")
    ax.set_title("MPLS cache map, as the kernel charges it", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    nsh = sorted((r for r in rows if r["encap"] == "nsh"),
                 key=lambda r: (r["key"], r["cache_size"], r["params"]["max_md_bytes"]))
    labels = [f"{r['key'][:4]}\n{r['cache_size']}\nmd {r['params']['max_md_bytes']}" for r in nsh]
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
