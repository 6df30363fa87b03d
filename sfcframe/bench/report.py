"""Markdown tables of result documents, and the generated parts of BENCHMARKS.md.

BENCHMARKS.md keeps its prose; only the text between
``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->`` is rewritten by
``sfcframe bench report`` from ``bench-results/NAME.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sfcframe.bench.goodput import ROWS as GOODPUT_ROWS
from sfcframe.bench.scenarios import COLLISION_RUNS, FLOW_COLLISION_RUNS, collisions_testbed


def _n(v: float) -> str:
    return f"{v:.0f}"


def _spread(s: dict) -> str:
    return f"{_n(s['median'])} ({_n(s['min'])}–{_n(s['max'])})"


def _machine_line(doc: dict) -> str:
    m = doc["machine"]
    v = m["versions"]
    git = m.get("git") or {}
    rev = f", sfcframe commit {git['commit'][:10]}{' + local changes' if git.get('dirty') else ''}" \
        if git.get("commit") else ""
    return (f"{m['cpu_model']}, {m['cores']} cores{', ' + m['hypervisor'] + ' guest' if m.get('hypervisor') else ''}, "
            f"Linux {m['kernel']}, {m['distro']}; sfcframe {v['sfcframe']}, bcc {v['bcc']}, "
            f"Python {v['python']}{rev}; load average at start {m.get('loadavg', '?').split(' ')[0]}")


def header(doc: dict) -> str:
    return (f"Made by `{doc['command']}` on {doc['created']}.  \n"
            f"Machine: {_machine_line(doc)}.\n")


def cost_table(doc: dict) -> str:
    lines = [
        "| row | what | ingress net | p10/p90 | gross | egress net | p10/p90 | gross |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in doc["results"]["rows"]:
        cells = [f"`{row['id']}`", row["description"]]
        for d in ("ingress", "egress"):
            data = row["directions"].get(d)
            if not data:
                cells += ["", "", ""]
                continue
            net = data["net"]
            cells += [_spread(net["per_round_median"]),
                      f"{_n(net['pooled']['p10'])}/{_n(net['pooled']['p90'])}",
                      _n(data["gross"]["per_round_median"]["median"])]
        lines.append("| " + " | ".join(cells) + " |")
    f = doc["results"]["floors"]
    c = doc["results"].get("calibration") or {}
    lines.append("")
    lines.append(
        f"ns/packet; net and gross: median of the per-round medians (min–max across "
        f"{doc['parameters']['rounds']} rounds); p10/p90 over all "
        f"{doc['parameters']['rounds'] * doc['parameters']['packets']} net samples of the row. "
        f"Floor (no-op program, same harness, same packets): XDP "
        f"{_spread(f['xdp']['per_round_median'])}, TC {_spread(f['tc']['per_round_median'])} ns; "
        f"timer step {doc['results']['timer']['observed_resolution_ns']} ns."
    )
    if c:
        b = c["batched_ns_per_run"]
        lines.append(
            f"Batched cross-check (repeat={c['batch_repeat']}, one frame): no-op XDP "
            f"{_n(b['noop_xdp']['median'])} ns, no-op TC {_n(b['noop_tc']['median'])} ns per run; "
            f"tcpip egress miss (key + lookup miss + counter) net {_n(c['egress_miss_net']['single_run'])} "
            f"ns as single runs vs {_n(c['egress_miss_net']['batched'])} ns batched."
        )
        pair = c.get("lru_insert_delete_net")
        if pair:
            lines.append(
                f"The cache's map operations alone (LRU hash of the same shape, one insert + "
                f"one delete, no packet work): net {_n(pair['single_run'])} ns as single runs, "
                f"{_n(pair['batched'])} ns batched (warm, same key)."
            )
    return "\n".join(lines) + "\n"


def breakdown_table(doc: dict) -> str:
    comparison = doc["results"].get("comparison")
    if not comparison:
        return "_(run `sfcframe bench cost --breakdown` for this table)_\n"
    lines = [
        "| variant | kind | direction | unmodified net | variant net | difference (min–max) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for c in comparison:
        lines.append(
            f"| `{c['variant']}`: {c.get('description') or '; '.join(c['edits'])} | {c['kind']} | "
            f"{c['direction']} | "
            f"{_n(c['baseline_net_ns'])} | {_n(c['variant_net_ns'])} | "
            f"{_spread(c['delta_ns'])}{' ⚠ ' + c['problems'][0] if c['problems'] else ''} |"
        )
    lines.append("")
    lines.append("ns/packet; difference = variant minus unmodified row, per round, median "
                 "(min–max across rounds).")
    return "\n".join(lines) + "\n"


def memory_table(doc: dict) -> str:
    lines = [
        "| encap | parameters | key | cache | cache_size | entries | key + value B | memlock B | "
        "B/entry | model: element + bucket B/entry |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = {"assoc": 0, "lru": 1, "ring": 2}
    rows = sorted(doc["results"]["rows"],
                  key=lambda r: (r["encap"] != "mpls", r["key"] != "tcpip",
                                 r["params"].get("family", "ipv4") != "ipv4",
                                 order.get(r.get("cache", "lru"), 3), r["cache_size"],
                                 r["params"].get("max_labels", 0), -r["params"].get("pop", 0),
                                 r["params"].get("max_md_bytes", 0)))
    for r in rows:
        p = r["params"]
        what = (f"max_labels={p['max_labels']} pop={p['pop']}" if r["encap"] == "mpls"
                else f"max_md_bytes={p['max_md_bytes']}")
        key = r["key"] + (f" ({p['family']})" if p.get("family", "ipv4") != "ipv4" else "")
        lines.append(
            f"| {r['encap']} | {what} | {key} | {r.get('cache', 'lru')} | "
            f"{r['cache_size']} | {r.get('entries', r['max_entries'])} | "
            f"{r['key_size']} + {r['value_size']} = {r['key_value_bytes']} | "
            f"{r['memlock_bytes']} | {r['bytes_per_entry']:.2f} | "
            f"{r['model']['element_bytes']} + {r['model']['bucket_bytes_per_entry']:.2f} |"
        )
    lines.append("")
    residual = {c: sorted({r["model"]["fixed_residual_bytes"] for r in rows
                           if r.get("cache", "lru") == c}) for c in ("assoc", "lru", "ring")}
    lines.append("memlock of the cache map from /proc/self/fdinfo; B/entry = memlock / entries. "
                 "Model, cache=assoc: a slot (key + value) + 4 B of lanes per entry, 16 per "
                 "bucket, the array's header and data page-aligned (BPF_F_MMAPABLE), entries = "
                 "cache_size rounded up to whole buckets; cache=lru: htab_elem header 48 B + key "
                 "+ value rounded to 8, 16 B per bucket, buckets rounded up to a power of two; "
                 "cache=ring: one array slot (8-byte tag = the id, + the value, rounded to 8) per "
                 f"entry, no buckets. Fixed residual per map: assoc {residual['assoc']} B, "
                 f"lru {residual['lru']} B, ring {residual['ring']} B.")
    return "\n".join(lines) + "\n"


def targets_table(doc: dict) -> str:
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    for t in doc["targets"]:
        lines.append(f"| {t['name']} | {t['target']} | {_measured(t['measured'])} | "
                     f"{'yes' if t['met'] else 'no' if t['met'] is False else '?'} |")
    return "\n".join(lines) + "\n"


def _measured(m) -> str:
    if isinstance(m, dict):
        if "runs" in m and "median" in m:
            return f"{m['median']:g} ({m['min']:g}–{m['max']:g}) over {len(m['runs'])} runs"
        if "ratio" in m and "assoc_ns" in m:
            r = m["ratio"]
            return (f"ratio {r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f}); assoc "
                    f"{_spread(m['assoc_ns'])} ns, lru {_spread(m['lru_ns'])} ns")
        if "ratio" in m:
            r = m["ratio"]
            base = "net_2_ns" if "net_2_ns" in m else "net_1_ns"
            return (f"ratio {r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f}); "
                    f"10 labels {_spread(m['net_10_ns'])} ns, {base[4]} label(s) "
                    f"{_spread(m[base])} ns")
        if "net_ns" in m:
            extra = f" (worst: `{m['worst_row']}`)" if "worst_row" in m else ""
            return f"{_spread(m['net_ns'])} ns{extra}"
        if "bytes_per_entry" in m and "rows" in m:
            rows = "; ".join(f"{k}: {v:.2f}" for k, v in m["rows"].items())
            return f"{m['bytes_per_entry']:.2f} B/entry (worst); {rows}"
        if "bytes_per_entry" in m:
            sizes = "; ".join(f"{k}: {v['bytes_per_entry_min']:.2f}–{v['bytes_per_entry_max']:.2f}"
                              for k, v in m.get("by_cache_size", {}).items())
            return f"{m['bytes_per_entry']:.2f} B/entry (worst: {m['worst_row']}); by cache_size {sizes}"
        if "bytes" in m:
            return f"{m['bytes']} B (worst: {m['worst_row']})"
    if isinstance(m, str):
        return m
    return json.dumps(m)


def auto_overhead_table(doc: dict) -> str:
    """The auto key against the single key on the same packets (cost-keys.json)."""
    entries = doc["results"].get("auto_overhead") or []
    if not entries:
        return "_(no auto rows with their single-key rows in this run)_\n"
    lines = ["| inner packets | single key row | ingress: single | auto | auto - single "
             "| egress: single | auto | auto - single |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for e in entries:
        cells = [e["inner"], f"`{e['single_row']}`"]
        for d in ("ingress", "egress"):
            cells += [_n(e[d]["single_ns"]), _n(e[d]["auto_ns"]), _spread(e[d]["overhead_ns"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "ns per packet, net of the empty-program floor; auto - single: median of the "
              "per-round differences (min-max over rounds), both rows measured in the same rounds."]
    return "\n".join(lines) + "\n"


SECTIONS = {
    "cost": lambda doc: header(doc) + "\n" + cost_table(doc) + "\nTargets:\n\n" + targets_table(doc),
    "cost-keys": lambda doc: (header(doc) + "\n" + cost_table(doc) + "\nThe auto key's dispatch "
                              "overhead:\n\n" + auto_overhead_table(doc)),
    "cost-breakdown": lambda doc: header(doc) + "\n" + breakdown_table(doc),
    "memory": lambda doc: header(doc) + "\n" + memory_table(doc) + "\nTargets:\n\n" + targets_table(doc),
}
_SOURCES = {"cost": "cost", "cost-keys": "cost-keys", "cost-breakdown": "cost-breakdown",
            "memory": "memory"}


def update_markdown(markdown: Path, results_dir: Path) -> bool:
    text = markdown.read_text()
    new = text
    for section, render in SECTIONS.items():
        source = results_dir / f"{_SOURCES[section]}.json"
        pattern = re.compile(
            rf"(<!-- bench:{re.escape(section)}:begin -->\n).*?(<!-- bench:{re.escape(section)}:end -->)",
            re.DOTALL,
        )
        if not source.exists() or not pattern.search(new):
            continue
        from sfcframe.bench.results import load

        body = render(load(source))
        new = pattern.sub(lambda m: m.group(1) + body + m.group(2), new)
    if new != text:
        markdown.write_text(new)
    return new != text


# ---- traffic benchmarks (sfcframe.bench.scenarios) -------------------------------------------


def _sp(s: dict | None, fmt: str = "{:.0f}") -> str:
    if not s:
        return "–"
    if s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def drop_table(doc: dict) -> str:
    s = doc["results"]["summary"]
    p = doc["parameters"]
    lines = ["| counter | median (min–max) |", "|---|---:|"]
    for direction in ("ingress", "egress"):
        for name, v in s[direction].items():
            lines.append(f"| {direction} {name} | {_sp(v)} |")
    lines += [
        f"| restored / cached | {_sp(s['restored_over_cached'], '{:.4f}')} |",
        f"| stale entries left in the cache | {_sp(s['stale_entries'])} |",
        f"| dropped by the VNF (iptables) | {_sp(s['vnf_dropped'])} |",
        f"| goodput Mb/s | {_sp(s['goodput_mbps'], '{:.1f}')} |",
        "",
        f"{p['runs']} runs x {p['seconds']:g} s, {p['labels']} MPLS labels, key {p['key']}, "
        f"{p['drop_probability']:.0%} random drop; {s['mismatches']} header mismatches at the "
        "receiver in all runs.",
    ]
    return "\n".join(lines) + "\n"


_DELAY_ROLES = {"size-check": " (`sfcframe size`)", "size-nominal": " (`size`, nominal delay)",
                "size-observed": " (`size --observe`)"}


def delay_table(doc: dict) -> str:
    p = doc["parameters"]
    lines = [
        "| cache_size | egress misses | restored | transmitted | goodput Mb/s | cached pkt/s | "
        "in flight (Little) | peak in flight (counters, 100 Hz) | peak entries (1 Hz) | "
        "miss ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["results"]["table"]:
        ratio = r["miss_ratio"]["median"] if r["miss_ratio"] else None
        cs = f"{r['cache_size']}" + _DELAY_ROLES.get(r["role"], "")
        lines.append(
            f"| {cs} | {_sp(r['misses'])} | {_sp(r['restored'])} | {_sp(r['transmitted'])} | "
            f"{_sp(r['goodput_mbps'], '{:.1f}')} | {_sp(r['cached_pps'])} | "
            f"{r['little_in_flight'] if r['little_in_flight'] is not None else '–'} | "
            f"{_sp(r.get('peak_in_flight'))} | "
            f"{_sp(r['peak_entries'])} | {'–' if ratio is None else f'{ratio:.4%}'} |"
        )
    c = doc["results"]["size_check"]
    lines += [
        "",
        f"{p['delay_ms']:g} ms user-space delay VNF, {p['runs']} run(s) x {p['seconds']:g} s per "
        f"cache size, {p['labels']} MPLS labels, key {p['key']}.",
    ]
    checks = c.get("checks")
    if checks is None:  # documents written before --observe existed: one nominal check
        checks = [{"role": "size-check", "command": "sfcframe size --rate R --delay D",
                   **{k: c[k] for k in ("sizing", "recommended_cache_size", "misses",
                                        "zero_misses")}}]
    for chk in checks:
        z = chk["sizing"]
        basis = (f"peak {z['in_flight']:.0f} in flight x margin {z['margin']:g}"
                 if z.get("basis") == "observed peak" else
                 f"{c['rate_pps']:.0f} pkt/s x {c['delay_ms']:g} ms = {z['in_flight']:.0f} in "
                 f"flight x margin {z['margin']:g}")
        lines.append(
            f"* `{chk['command']}`: {basis} + LRU slack {z.get('slack', 0)} -> cache_size "
            f"{chk['recommended_cache_size']}; misses there: {chk['misses']} -> "
            f"**{'zero misses' if chk['zero_misses'] else 'NOT zero misses'}**."
        )
    return "\n".join(lines) + "\n"


def collisions_table(doc: dict) -> str:
    s = doc["results"]["summary"]
    p = doc["parameters"]
    lines = [
        "| run | ingress handled | collision | per million | goodput Mb/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(doc["results"]["runs"], 1):
        handled = r["cached"] + r["ingress"].get("plain", 0) + r["collision"]
        lines.append(f"| {i} | {handled} | {r['collision']} | {r['collisions_per_million']:.2f} | "
                     f"{r['goodput_mbps']:.1f} |")
    lines.append(f"| **median (min–max)** | {_sp(s['handled'])} | {_sp(s['collision'])} | "
                 f"{_sp(s['collisions_per_million'], '{:.2f}')} | {_sp(s['goodput_mbps'], '{:.1f}')} |")
    testbed = collisions_testbed(p.get("encap", "mpls"), p.get("inner", "ipv4"),
                                 p.get("ingress", "tc"), p.get("vnf", "forward"))
    traffic = ("2 bulk TCP streams" if p.get("traffic", "tcp") == "tcp"
               else f"--traffic {p['traffic']}")
    lines += ["", f"{p['runs']} runs x {p['seconds']:g} s, {testbed}, key {p['key']}, {traffic}; "
              "handled = cached + plain + collision."]
    return "\n".join(lines) + "\n"


def _collisions_section(doc: dict) -> str:
    return header(doc) + "\n" + collisions_table(doc) + "\nTargets:\n\n" + targets_table(doc)


SECTIONS.update({
    "drop": lambda doc: header(doc) + "\n" + drop_table(doc),
    "delay": lambda doc: header(doc) + "\n" + delay_table(doc) + "\nTargets:\n\n" + targets_table(doc),
    **{name: _collisions_section for name in COLLISION_RUNS.values()},
    **{name: _collisions_section for name in FLOW_COLLISION_RUNS.values()},
})
_SOURCES.update({"drop": "drop", "delay": "delay", **{n: n for n in COLLISION_RUNS.values()},
                 **{n: n for n in FLOW_COLLISION_RUNS.values()}})


# ---- goodput vs label depth (sfcframe.bench.goodput) ------------------------------------------


def goodput_table(doc: dict) -> str:
    p = doc["parameters"]
    res = doc["results"]
    cells = res["cells"]
    sweep = [c for c in cells if c["hook"] == p["hook"]]
    rows = [r for r in GOODPUT_ROWS if any(c["row"] == r for c in sweep)]
    by = {(c["row"], c["labels"]): c for c in sweep}
    lines = [f"Goodput Mb/s at hook `{p['hook']}` (median, min–max over {p['runs']} runs x "
             f"{p['seconds']:g} s), relative to the control:", "",
             "| labels | " + " | ".join(rows) + " |", "|---:|" + "---:|" * len(rows)]
    for d in p["labels"]:
        cells_ = []
        for r in rows:
            c = by.get((r, 0 if r == "control" else d))
            if not c:
                cells_.append("–")
                continue
            rel = c.get("relative_to_control")
            cells_.append(_sp(c["summary"]["goodput_mbps"]) + (f" ({rel:.0%})" if rel is not None else ""))
        lines.append(f"| {d} | " + " | ".join(cells_) + " |")
    lines += ["", "Kernel CPU (system + softirq, all CPUs) per million packets into the VNF host, "
              "CPU-seconds (median, min–max); mismatches / egress misses summed over runs:", "",
              "| labels | " + " | ".join(rows) + " |", "|---:|" + "---:|" * len(rows)]
    for d in p["labels"]:
        cells_ = []
        for r in rows:
            c = by.get((r, 0 if r == "control" else d))
            if not c:
                cells_.append("–")
                continue
            s = c["summary"]
            cells_.append(f"{_sp(s['cpu_s_per_mpkt'], '{:.2f}')}; {s['mismatches']} / {s['egress_misses']}")
        lines.append(f"| {d} | " + " | ".join(cells_) + " |")
    comp = res.get("hook_comparison") or {}
    hooks = [h for h in p["hooks"] if any(h in v["hooks"] for v in comp.values())]
    if len(hooks) > 1:
        lines += ["", f"Ingress hooks at {p['compare_labels']} labels (control: 0 labels): "
                  "goodput Mb/s; CPU-s per million packets:", "",
                  "| row | " + " | ".join(f"`{h}`" for h in hooks) + " | most goodput | least CPU |",
                  "|---|" + "---:|" * len(hooks) + "---|---|"]
        for r, v in comp.items():
            cells_ = []
            for h in hooks:
                x = v["hooks"].get(h)
                cells_.append("–" if not x else f"{_sp(x['goodput_mbps'])}; "
                              f"{_sp(x['cpu_s_per_mpkt'], '{:.2f}')}")
            lines.append(f"| {r} | " + " | ".join(cells_) + f" | `{v['best_goodput']}` | "
                         f"`{v['least_cpu']}` |")
    if res.get("unavailable"):
        lines += ["", "Not measured: " + "; ".join(f"{k}: {v}" for k, v in res["unavailable"].items())
                  + "."]
    lines += ["", f"Control: {doc['method']['rows']['control']}"]
    return "\n".join(lines) + "\n"


def _paired(spread: dict | None) -> str:
    """Paired per-round ratios as percentages: median (min–max)."""
    if not spread:
        return "–"
    return f"{spread['median']:.1%} ({spread['min']:.1%}–{spread['max']:.1%})"


def goodput_targets(doc: dict) -> str:
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    for t in doc["targets"]:
        m = t["measured"]
        if isinstance(m, dict) and "control_mbps" in m:
            rel = m.get("relative")
            text = (f"paired {_paired(m.get('paired'))}; ratio of medians "
                    f"{'–' if rel is None else f'{rel:.1%}'}: {_sp(m['goodput_mbps'])} vs "
                    f"{_sp(m['control_mbps'])} Mb/s; {m['mismatches']} mismatches, "
                    f"{m['egress_misses']} egress misses")
        elif isinstance(m, dict):
            text = (f"paired {_paired(m.get('paired'))}: "
                    f"{_sp(m['cpu_s_per_mpkt'], '{:.2f}')} vs "
                    f"{_sp(m['control_cpu_s_per_mpkt'], '{:.2f}')} CPU-s per million packets")
        else:
            text = t.get("note") or "not measured"
        lines.append(f"| {t['name']} | {t['target']} | {text} | "
                     f"{'yes' if t['met'] else 'no' if t['met'] is False else '?'} |")
    return "\n".join(lines) + "\n"


SECTIONS["goodput"] = lambda doc: (header(doc) + "\n" + goodput_table(doc) + "\nTargets:\n\n"
                                   + goodput_targets(doc))
_SOURCES["goodput"] = "goodput"


# ---- SRv6 (sfcframe.bench.srv6) ---------------------------------------------------------------


def srv6_table(doc: dict) -> str:
    p = doc["parameters"]
    cells = doc["results"]["cells"]
    ratios = {(c["row"], c["inner"]): c for c in doc["results"]["comparison"]}
    lines = [f"Through the SRv6 kernel-peer testbed, {p['runs']} runs x {p['seconds']:g} s per cell "
             "(median, min–max over runs); relative to the control of the same inner family:", "",
             "| row | inner | goodput Mb/s | vs control | kernel CPU-s / Mpkt | vs control | "
             "retransmits | packets checked | mismatches / egress misses |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cells:
        s = c["summary"]
        r = ratios.get((c["row"], c["inner"]), {})

        def rel(key: str) -> str:
            v = r.get(key)
            return "–" if v is None else f"{v:.0%}"

        lines.append(f"| {c['row']} | {c['inner']} | {_sp(s['goodput_mbps'])} | {rel('goodput_ratio')} | "
                     f"{_sp(s['cpu_s_per_mpkt'], '{:.2f}')} | {rel('cpu_ratio')} | "
                     f"{_sp(s['retransmits'])} | {s['checked']:,} | "
                     f"{s['mismatches']} / {s['egress_misses']} |")
    m = doc["method"]
    if doc["results"].get("unavailable"):
        lines += ["", "Not measured: " + "; ".join(
            f"{k}: {v}" for k, v in doc["results"]["unavailable"].items()) + "."]
    lines += ["", f"Control: {m['control']}. Proxy: {m['proxy']}. CPU: {m['cpu_per_packet']}."]
    return "\n".join(lines) + "\n"


def evict_table(doc: dict) -> str:
    rows = sorted(doc["results"]["rows"], key=lambda r: (r["cache_size"], r["level"], r["cache"]))
    lines = ["| cache_size | fill | cache | live | inserts | lost | lost / million takes | "
             "wrong | refused (exists / failed) | evicted / moved (assoc) | ns per step (median "
             "per CPU) |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ev = r.get("events") or {}
        events = f"{ev.get('evicted', 0):,} / {ev.get('moved', 0):,}" if ev else "–"
        step = ", ".join(f"{v['median']:.0f}" for v in r["step_ns"].values())
        lines.append(f"| {r['cache_size']:,} | {r['level']:.0%} | {r['cache']} | {r['live']:,} | "
                     f"{r['inserts']:,} | {r['lost']:,} | {r['lost_per_million']} | {r['wrong']} | "
                     f"{r['exists']:,} / {r['failed']:,} | {events} | {step} |")
    lines += ["", doc["method"]["summary"]]
    return "\n".join(lines) + "\n"


SECTIONS["evict"] = lambda doc: (header(doc) + "\n" + evict_table(doc) + "\nTargets:\n\n"
                                 + targets_table(doc))
_SOURCES["evict"] = "evict"

SECTIONS["srv6"] = lambda doc: (header(doc) + "\n" + srv6_table(doc) + "\nTargets:\n\n"
                                + targets_table(doc))
_SOURCES["srv6"] = "srv6"
