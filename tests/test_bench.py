"""sfcframe bench: the cost harness end to end on a handful of packets, the memory
benchmark on one configuration, and the pure-Python parts (statistics, schema,
command line). No timing is asserted: only that the harness measured what it
says it measured."""

from __future__ import annotations

import argparse
import json

import pytest

from sfcframe.bench import results as R
from sfcframe.bench.cli import add_bench_parser, main as bench_main
from sfcframe.bench.cost import default_rows

kernel = pytest.mark.kernel

SMOKE_ROWS = "mpls-tcpip-L0,mpls-tcpip-L10,mpls-tcpip-assoc-L10,mpls-metadata-L5,nsh-tcpip-md2"
PACKETS = 12
ROUNDS = 2


# ---- pure Python ----------------------------------------------------------------------


def test_summary_and_rounds():
    s = R.summarize([5, 1, 3, 2, 4])
    assert (s["n"], s["median"], s["min"], s["max"]) == (5, 3.0, 1.0, 5.0)
    assert s["p10"] == pytest.approx(1.4) and s["p90"] == pytest.approx(4.6)
    r = R.across_rounds([30.0, 10.0, 20.0])
    assert (r["median"], r["min"], r["max"], r["rounds"]) == (20.0, 10.0, 30.0, [30.0, 10.0, 20.0])


@pytest.mark.parametrize("encap, params, sizes", [
    ("mpls", {"max_labels": 10}, (1, 2, 5, 10)),
    ("nsh", {"max_md_bytes": 16}, (1, 2)),
    ("srv6", {"sid": "fc00::a", "max_segments": 16}, (1, 4, 8, 16)),
])
def test_bench_headers_are_valid_and_sized(encap, params, sizes):
    """Each encapsulation's benchmark headers parse per its oracle, one per size."""
    from sfcframe.spec import resolve_spec
    from sfcframe.testkit.packets import tcp_ipv4

    spec = resolve_spec(encap, "tcpip", params)
    plugin, values = spec.encap.plugin, spec.encap_params
    headers = []
    for size in sizes:
        header = plugin.bench_header(values, size)
        assert header == plugin.bench_header(values, size)
        _, l2 = plugin.encapsulate(header, tcp_ipv4(), values)
        assert plugin.reference_ingress(l2, values).outcome == "ok", (encap, size)
        headers.append(header)
    assert len(set(headers)) == len(headers)
    with pytest.raises(ValueError):
        plugin.bench_header(values, 99)


def test_observed_resolution_merges_one_ns_jitter():
    assert R.observed_resolution([130, 131, 140, 141, 150, 160, 161, 170]) == 10
    assert R.observed_resolution([100]) is None


def test_dumps_keeps_sample_lists_on_one_line():
    text = R.dumps({"a": {"samples_ns": [[1, 2, 3], [4, 5]]}, "b": "x"})
    assert "[1,2,3]" in text and "[4,5]" in text  # one line per round
    assert json.loads(text)["a"]["samples_ns"] == [[1, 2, 3], [4, 5]]


def test_validate_rejects_incomplete_documents():
    with pytest.raises(R.SchemaError):
        R.validate({"schema": R.SCHEMA})


def test_parser_registers_bench_cost_and_memory():
    parser = argparse.ArgumentParser(prog="sfcframe")
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "cost", "--repeat", "3", "--packets", "7", "--out", "x"])
    assert (args.command, args.bench_command, args.repeat, args.packets) == ("bench", "cost", 3, 7)
    args = parser.parse_args(["bench", "memory", "--cache-sizes", "100,128"])
    assert args.cache_sizes == [100, 128]
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "cost", "--packets", "0"])


def test_row_ids_are_unique_and_cover_the_issue():
    ids = [r.id for r in default_rows()]
    assert len(ids) == len(set(ids))
    for key in ("tcpip", "tcpip-assoc", "metadata"):
        for depth in (0, 1, 2, 5, 10):
            assert f"mpls-{key}-L{depth}" in ids
    for key in ("tcpip", "metadata"):
        assert f"nsh-{key}-md1" in ids and f"nsh-{key}-md2" in ids
    # the tcpip rows on their default cache (the LRU map) and on the assoc table, same rounds
    caches = {r.id: r.build.params_dict().get("cache") for r in default_rows()}
    assert caches["mpls-tcpip-L10"] is None and caches["mpls-tcpip-assoc-L10"] == "assoc"


# ---- kernel ---------------------------------------------------------------------------


@kernel
def test_cost_harness_smoke(kernel_ready, tmp_path):
    code = bench_main(["cost", "--rows", SMOKE_ROWS, "--packets", str(PACKETS),
                       "--repeat", str(ROUNDS), "--warmup", "4", "--in-flight", "5",
                       "--batch", "10", "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "cost.png").stat().st_size > 0
    doc = R.load(tmp_path / "cost.json")  # validates the schema
    assert doc["benchmark"] == "cost" and doc["parameters"]["rounds"] == ROUNDS
    assert doc["results"]["problems"] == {}
    rows = {row["id"]: row for row in doc["results"]["rows"]}
    assert set(rows) == set(SMOKE_ROWS.split(","))
    for rid, row in rows.items():
        assert row["packets"] == [PACKETS] * ROUNDS
        assert row["mismatches"] == 0 and row["leftover_entries"] == 0
        for direction, data in row["directions"].items():
            for series in (data["samples_ns"], data["floor_samples_ns"]):
                assert len(series) == ROUNDS
                assert all(len(r) == PACKETS for r in series)
                assert all(isinstance(s, int) and s > 0 for r in series for s in r), rid
        hit = "plain" if rid.endswith("-L0") else "restored"
        cached = "plain" if rid.endswith("-L0") else "cached"
        total = PACKETS * ROUNDS
        assert row["directions"]["ingress"]["counters"] == {cached: total}, rid
        assert row["directions"]["egress"]["counters"] == {hit: total}, rid
    assert {f for f in doc["results"]["floors"]} == {"xdp", "tc"}
    for name in ("noop_xdp", "noop_tc", "egress_miss"):
        assert doc["results"]["calibration"]["batched_ns_per_run"][name]["median"] > 0
    names = {t["name"] for t in doc["targets"]}
    assert "egress net cost at 10 labels, MPLS tcpip (cache=lru)" in names
    assert "ingress net cost, MPLS tcpip 10 labels: cache=assoc vs cache=lru" in names


@kernel
def test_cost_cache_size_reaches_every_build_and_the_kernel_map(kernel_ready):
    """`bench cost --cache-size N`: every row's build gets cache_size N (ids and the
    rest of its parameters unchanged), and the loaded cache map has N entries (lru)
    or N / 16 buckets (assoc)."""
    from sfcframe.bench.cost import LoadedBuild, default_rows, with_cache_size

    rows = default_rows()
    sized = [with_cache_size(row, 256) for row in rows]
    assert [r.id for r in sized] == [r.id for r in rows]
    for before, after in zip(rows, sized):
        assert after.build.params_dict() == {**before.build.params_dict(), "cache_size": 256}
    builds = {r.build.name: r.build for r in sized}
    for name, entries in (("mpls-tcpip", 256), ("mpls-tcpip-assoc", 16)):
        loaded = LoadedBuild(builds[name])
        try:
            assert loaded.proxy.module.table("sfc_cache").max_entries == entries, name
        finally:
            loaded.close()


@kernel
def test_evict_bench_end_to_end(kernel_ready, tmp_path):
    """bench evict on a small table: JSON (schema), plot, table; counts only (no timings).
    Below the fill the assoc table keeps everything; at 100 % both kinds lose entries,
    never with a wrong header."""
    from sfcframe.bench.report import evict_table

    code = bench_main(["evict", "--cache-sizes", "512", "--levels", "0.5,1", "--inserts",
                       "40000", "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "evict.png").stat().st_size > 0
    doc = R.load(tmp_path / "evict.json")
    rows = {(r["cache"], r["level"]): r for r in doc["results"]["rows"]}
    assert set(rows) == {(k, lv) for k in ("assoc", "lru") for lv in (0.5, 1.0)}
    assert all(r["wrong"] == 0 and r["inserts"] == 40000 for r in rows.values())
    assert rows["assoc", 0.5]["lost"] == 0 and rows["assoc", 0.5]["events"]["evicted"] == 0
    assert rows["assoc", 1.0]["lost"] > 0 and rows["assoc", 1.0]["events"]["evicted"] > 0
    assert rows["lru", 1.0]["lost"] > 0
    assert "| 512 | 50% | assoc | 512 |" not in evict_table(doc)  # live is the fill, not the size
    assert "| 512 | 50% | assoc | 256 | 40,000 | 0 |" in evict_table(doc)
    names = {t["name"] for t in doc["targets"]}
    assert "assoc: live entries lost at <= 75 % fill, cache_size 512" in names


@kernel
def test_cost_key_rows_smoke(kernel_ready, tmp_path):
    """bench cost --keys: every key on its own packets (each one cached and restored,
    the oracle's frames), auto on each protocol, and auto's overhead per protocol."""
    code = bench_main(["cost", "--keys", "--packets", str(PACKETS), "--repeat", str(ROUNDS),
                       "--warmup", "4", "--in-flight", "5", "--batch", "10", "--no-plot",
                       "--out", str(tmp_path)])
    assert code == 0
    doc = R.load(tmp_path / "cost-keys.json")
    assert doc["results"]["problems"] == {}
    rows = {row["id"]: row for row in doc["results"]["rows"]}
    assert {"key-rtp-rtp", "key-esp-esp_udp", "key-icmp-icmp", "key-udp-udp",
            "key-auto-udp"} <= set(rows)
    for rid, row in rows.items():
        assert row["mismatches"] == 0 and row["leftover_entries"] == 0, rid
        assert row["directions"]["ingress"]["counters"] == {"cached": PACKETS * ROUNDS}, rid
        assert row["directions"]["egress"]["counters"] == {"restored": PACKETS * ROUNDS}, rid
    overhead = {e["inner"]: e for e in doc["results"]["auto_overhead"]}
    assert set(overhead) == {"tcp", "rtp", "esp", "esp_udp", "icmp", "udp"}
    assert all(len(e["ingress"]["overhead_ns"]["rounds"]) == ROUNDS for e in overhead.values())
    from sfcframe.bench import report

    assert "auto - single" in report.auto_overhead_table(doc)


@kernel
def test_memory_matches_the_kernel_accounting_model(kernel_ready):
    from sfcframe.bench.memory import measure

    row = measure({"encap": "mpls", "key": "tcpip", "cache_size": 1000,
                   "params": {"max_labels": 10, "cache": "lru"}})
    assert (row["key_size"], row["value_size"]) == (24, 44)  # the entry and its stamp
    assert row["max_entries"] == 1000 and row["memlock_bytes"] > 0
    assert row["model"]["buckets"] == 1024
    # everything but a small fixed part of the map is elements and buckets
    assert 0 <= row["model"]["fixed_residual_bytes"] < 4096
    # cache=assoc: 63 buckets of 16 slots (1000 rounded up), a slot of 24 + 40 B + 4 B of
    # lanes per entry; the kernel page-aligns the array's header and its data
    row = measure({"encap": "mpls", "key": "tcpip", "cache_size": 1000,
                   "params": {"max_labels": 10, "cache": "assoc"}})
    assert row["cache"] == "assoc" and (row["key_size"], row["value_size"]) == (24, 40)
    assert row["max_entries"] == 63 and row["entries"] == 1008
    assert row["model"]["element_bytes"] == 68
    assert row["memlock_bytes"] == row["model"]["modelled_bytes"]
    assert row["bytes_per_entry"] == round(row["memlock_bytes"] / 1008, 2) < 80


def _fake_demo(cached, restored, misses, plain=10, collision=0, entries=0, goodput=100.0,
               seconds=2.0, dropped=None):
    return {
        "verdict": "PASS", "reasons": [], "config": {"seconds": seconds},
        "packets": {"stamped": cached + plain, "checked_match": cached, "checked_mismatch": 0},
        "goodput_mbps": goodput, "retransmits": 0,
        "proxy": {"ingress": {"plain": plain, "collision": collision, "cached": cached},
                  "egress": {"plain": plain, "not_cached": misses, "restored": restored},
                  "cache": {"entries": entries, "capacity": 1000}},
        "vnf": {} if dropped is None else {"dropped": dropped},
    }


def test_scenario_summaries_on_fake_runs():
    from sfcframe.bench import report, scenarios as S

    runs = [S.run_record(_fake_demo(1000, 990, 0, entries=10, dropped=10, goodput=g))
            for g in (90.0, 110.0, 100.0)]
    drop = S.summarize_drop(runs)
    assert drop["restored_over_cached"]["median"] == 0.99
    assert drop["stale_entries"]["median"] == 10 and drop["goodput_mbps"]["min"] == 90.0
    assert drop["egress"]["restored"]["max"] == 990
    rec = S.run_record(_fake_demo(990_000, 980_000, 0, plain=9_999, collision=1), peak_entries=7)
    assert rec["collisions_per_million"] == 1.0 and rec["peak_entries"] == 7
    assert S.summarize_collisions([rec])["collisions_per_million"]["median"] == 1.0
    rows = [{"cache_size": 1000, "runs": [S.run_record(_fake_demo(10_000, 9_900, 100, seconds=2))]}]
    table = S.summarize_delay(rows, delay_ms=5)
    assert table[0]["cached_pps"]["median"] == 5000 and table[0]["little_in_flight"] == 25.0
    assert table[0]["miss_ratio"]["median"] == 0.01 and table[0]["zero_misses"] is False
    doc = R.document("delay", {"delay_ms": 5, "runs": 1, "seconds": 2, "labels": 10, "key": "tcpip"},
                     {}, {"rows": rows, "table": table, "size_check": {
                         "rate_pps": 5000, "delay_ms": 5, "recommended_cache_size": 128,
                         "misses": [0], "zero_misses": True,
                         "sizing": {"in_flight": 25, "margin": 4}}}, [],
                     {"cpu_model": "x", "cores": 2, "kernel": "k", "distro": "d",
                      "versions": {"sfcframe": "0", "bcc": "0", "python": "3"}})
    assert "| 1000 | 100 | 9900 |" in report.delay_table(doc)

    # the current layout: two recommendations (nominal delay, observed peak), each checked
    obs_run = S.run_record(_fake_demo(10_000, 10_000, 0, seconds=2))
    obs_run["observation"] = {"peak_in_flight": 700}
    rows = [{"cache_size": 100000, "role": "sweep", "runs": [obs_run]},
            {"cache_size": 1024, "role": "size-nominal", "runs": [S.run_record(
                _fake_demo(10_000, 9_990, 10, seconds=2))]},
            {"cache_size": 2048, "role": "size-observed", "runs": [obs_run]}]
    table = S.summarize_delay(rows, delay_ms=5)
    assert table[0]["peak_in_flight"]["median"] == 700 and table[1]["peak_in_flight"] is None
    checks = [
        {"role": "size-nominal", "command": "sfcframe size --rate R --delay D",
         "sizing": {"in_flight": 25, "margin": 4, "slack": 256, "basis": "rate x delay"},
         "recommended_cache_size": 1024, "misses": [10], "zero_misses": False},
        {"role": "size-observed", "command": "sfcframe size --observe NAME",
         "sizing": {"in_flight": 700, "margin": 2, "slack": 256, "basis": "observed peak"},
         "recommended_cache_size": 2048, "misses": [0], "zero_misses": True},
    ]
    doc["results"] = {"rows": rows, "table": table,
                      "size_check": {"rate_pps": 5000, "delay_ms": 5, "checks": checks}}
    text = report.delay_table(doc)
    assert "| 2048 (`size --observe`) | 0 |" in text and "| 700 |" in text
    assert "peak 700 in flight x margin 2 + LRU slack 256 -> cache_size 2048" in text
    assert "**NOT zero misses**" in text and "**zero misses**" in text


def test_collisions_over_srv6_and_ipv6_report_and_refusal(tmp_path, capsys):
    """--encap srv6 --inner ipv6 writes its own result (collisions-srv6-ipv6) whose
    section BENCHMARKS.md has next to the MPLS one; a testbed that does not exist is
    refused with a one-line error before anything runs."""
    from sfcframe.bench import report, scenarios as S

    assert S.COLLISION_RUNS[("srv6", "ipv6", "tc")] == "collisions-srv6-ipv6"
    assert S.COLLISION_RUNS[("mpls", "ipv4", "tc")] == "collisions"
    assert S.COLLISION_RUNS[("srv6", "ipv6", "xdp")] == "collisions-srv6-ipv6-xdp"
    runs = [S.run_record(_fake_demo(1_000_000, 1_000_000, 0, plain=0, collision=c))
            for c in (0, 3)]
    machine = {"cpu_model": "x", "cores": 2, "kernel": "k", "distro": "d", "loadavg": "1 1 1",
               "versions": {"sfcframe": "0", "bcc": "0", "python": "3"}}
    doc = R.document("collisions-srv6-ipv6", {"seconds": 6, "runs": 2, "labels": None,
                                              "key": "tcpip(family=ipv6)", "encap": "srv6",
                                              "inner": "ipv6"},
                     {}, {"runs": runs, "summary": S.summarize_collisions(runs)}, [], machine)
    R.write(doc, tmp_path)
    markdown = tmp_path / "B.md"
    markdown.write_text("<!-- bench:collisions-srv6-ipv6:begin -->\nold\n"
                        "<!-- bench:collisions-srv6-ipv6:end -->\n")
    assert report.update_markdown(markdown, tmp_path)
    text = markdown.read_text()
    assert "| 2 | 1000003 | 3 | 3.00 |" in text and "inner ipv6, key tcpip(family=ipv6)" in text
    assert "End.DT6" in text and "\nold\n" not in text  # (the command line may hold "golden")
    assert bench_main(["collisions", "--encap", "mpls", "--inner", "ipv6", "--runs", "1"]) == 2
    assert "no testbed for --encap mpls --inner ipv6" in capsys.readouterr().err


# ---- goodput (sfcframe.bench.goodput): pure parts and a short real run --------------------------


def _gp_sample(goodput, cpu=9.0, mismatches=0, misses=0, rnd=0):
    return {"goodput_mbps": goodput, "retransmits": 10, "cpu_s_per_mpkt": cpu, "busy_fraction": 0.9,
            "packets": 100000, "proxy_handled": 100000, "mismatches": mismatches,
            "egress_misses": misses, "proxy": {}, "cpu_s": {}, "round": rnd}


def test_goodput_analysis_and_targets_on_fake_cells():
    from sfcframe.bench import goodput as G, report

    def cell(row, hook, labels, values, cpus=None, **kw):
        runs = [_gp_sample(v, rnd=i, **({"cpu": cpus[i]} if cpus else {}), **kw)
                for i, v in enumerate(values)]
        return {"id": G.cell_id(row, hook, labels), "row": row, "hook": hook, "labels": labels,
                "phase": "sweep" if hook == "xdp-native" else "hooks", "runs": runs,
                "summary": G.summarize_cell(runs)}

    cells = [cell("control", "xdp-native", 0, [1000, 900, 1100]),
             cell("tcpip", "xdp-native", 10, [960, 950, 990]),
             cell("metadata", "xdp-native", 10, [800, 990, 990], misses=1),
             cell("tcpip-assoc", "xdp-native", 10, [1000, 800, 1000]),
             cell("control", "xdp-generic", 0, [2000], cpus=[9.0]),
             cell("tcpip", "xdp-generic", 10, [1900], cpus=[10.0])]
    a = G.analyse(cells, hook="xdp-native", compare_labels=10, hooks=["xdp-native", "xdp-generic"])
    assert a["relative_to_control"]["tcpip"]["10"] == 0.96
    assert a["hook_comparison"]["tcpip"]["best_goodput"] == "xdp-generic"
    assert a["hook_comparison"]["control"]["hooks"]["xdp-generic"]["goodput_mbps"]["median"] == 2000
    # paired round by round: 960/1000, 950/900, 990/1100
    paired = cells[1]["paired_to_control"]["goodput_mbps"]
    assert (paired["median"], paired["min"], paired["max"]) == (0.96, 0.9, 1.0556)
    assert cells[1]["paired_to_control"]["cpu_s_per_mpkt"]["median"] == 1.0
    # tcpip-assoc: the ratio of medians is 1.0, but round by round it is 1.0, 0.889, 0.909
    assert cells[3]["relative_to_control"] == 1.0
    assert cells[3]["paired_to_control"]["goodput_mbps"]["median"] == 0.9091
    targets = {t["name"]: t for t in G.make_targets(
        cells, hook="xdp-native", compare_labels=10,
        rows=["control", "static", "tcpip", "tcpip-assoc", "metadata"],
        unavailable={"static": "no static proxy"})}
    met = {(name.split(" with")[0], name.split("(")[1].rstrip(")")): t["met"]
           for name, t in targets.items()}
    assert met == {
        ("goodput", "static, xdp-native"): None, ("CPU per packet", "static, xdp-native"): None,
        ("goodput", "tcpip, xdp-native"): True, ("CPU per packet", "tcpip, xdp-native"): True,
        ("goodput", "tcpip, xdp-generic"): True,  # 1900 / 2000 = 95 %
        ("CPU per packet", "tcpip, xdp-generic"): False,  # 10.0 / 9.0 = 111 %
        ("goodput", "tcpip-assoc, xdp-native"): False,  # paired median 90.9 %
        ("CPU per packet", "tcpip-assoc, xdp-native"): True,
        ("goodput", "metadata, xdp-native"): False,  # 3 egress misses
        ("CPU per packet", "metadata, xdp-native"): True}
    assert targets["goodput with 10 labels vs control (static, xdp-native)"]["note"] == \
        "no static proxy"
    text = report.goodput_targets({"targets": list(targets.values())})
    assert "paired 96.0% (90.0%–105.6%); ratio of medians 96.0%: 960" in text
    assert "paired 111.1% (111.1%–111.1%): 10.00 vs 9.00 CPU-s per million packets" in text
    assert set(G.ROW_BUILDS) == set(G.ROWS)  # every row --rows takes has a testbed build
    assert G.ROW_BUILDS["tcpip-assoc"] == ("tcpip", {"cache": "assoc"})
    assert G.static_header(0) == "" and G.static_header(1) == ""
    assert G.static_header(2) == "0x0a11c9bf"  # bottom label from DEMO_CONSTANT_H, S bit set
    cells_plan = G.plan_cells(["control", "tcpip"], [0, 2], "xdp-native", ["xdp-native", "tc"], 2)
    assert cells_plan == [("control", "xdp-native", 0), ("tcpip", "xdp-native", 0),
                          ("tcpip", "xdp-native", 2), ("control", "tc", 0), ("tcpip", "tc", 2)]


def test_goodput_parser():
    parser = argparse.ArgumentParser(prog="sfcframe")
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "goodput", "--labels", "10,0,2", "--rows", "control,tcpip",
                              "--hooks", "xdp-native,tc"])
    assert (args.labels, args.rows, args.hooks, args.hook) == ([0, 2, 10], ["control", "tcpip"],
                                                               ["xdp-native", "tc"], "tc")
    assert parser.parse_args(["bench", "goodput"]).rows == ["control", "static", "tcpip", "metadata"]
    assert parser.parse_args(["bench", "goodput", "--rows", "control,tcpip-assoc"]).rows == \
        ["control", "tcpip-assoc"]
    for bad in (["--rows", "control,nope"], ["--labels", "40"], ["--hooks", "xdp"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["bench", "goodput", *bad])


@kernel
def test_goodput_harness_smoke(kernel_ready, tmp_path):
    """Real namespaces and iperf3: 1 run x 1 s, control and tcpip, 0 and 2 labels, one hook."""
    from sfcframe.bench.goodput import validate_results
    from sfcframe.demo.topology import leftover_namespaces

    code = bench_main(["goodput", "--labels", "0,2", "--runs", "1", "--seconds", "1",
                       "--rows", "control,tcpip", "--hook", "xdp-native", "--hooks", "xdp-native",
                       "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "goodput.png").stat().st_size > 0
    doc = R.load(tmp_path / "goodput.json")
    validate_results(doc["results"])
    assert doc["benchmark"] == "goodput" and doc["parameters"]["labels"] == [0, 2]
    cells = {c["id"]: c for c in doc["results"]["cells"]}
    assert set(cells) == {"control@xdp-native/L0", "tcpip@xdp-native/L0", "tcpip@xdp-native/L2"}
    for cid, c in cells.items():
        (run,) = c["runs"]
        assert run["goodput_mbps"] > 0 and run["packets"] > 0, cid
        assert run["mismatches"] == 0 and run["egress_misses"] == 0, cid
        assert c["summary"]["goodput_mbps"]["median"] == run["goodput_mbps"]
    two = cells["tcpip@xdp-native/L2"]["runs"][0]
    assert two["proxy"]["ingress"]["cached"] > 0 and two["sff"]["stamped"] > 0
    assert two["proxy"]["egress"]["restored"] >= 0.99 * two["proxy"]["ingress"]["cached"]
    assert doc["results"]["teardown"]["clean"]
    prefixes = [tb["namespaces"].rstrip("*") for tb in doc["results"]["testbeds"]]
    assert len(prefixes) == 2 and all(p.startswith("sfcd-g") for p in prefixes)
    assert not [n for n in leftover_namespaces() if n.startswith(tuple(prefixes))]
    names = [t["name"] for t in doc["targets"]]
    assert names == ["goodput with 2 labels vs control (tcpip, xdp-native)",
                     "CPU per packet with 2 labels vs control (tcpip, xdp-native)"]
    paired = doc["targets"][0]["measured"]["paired"]
    assert paired["runs"] == [round(cells["tcpip@xdp-native/L2"]["runs"][0]["goodput_mbps"]
                                    / cells["control@xdp-native/L0"]["runs"][0]["goodput_mbps"], 4)]


def test_every_variant_switch_changes_its_build_and_only_when_asked():
    """A switch the templates no longer act on would measure the unmodified program:
    each breakdown build's switches change its C, and the C of a build with none is
    the normal build's."""
    from sfcframe.bench.breakdown import breakdown_rows
    from sfcframe.composer import VARIANT_SWITCHES, render
    from sfcframe.errors import RenderError
    from sfcframe.spec import resolve_spec

    builds = {row.build for row in breakdown_rows()}
    used = {name for build in builds for name in build.switches}
    assert used == set(VARIANT_SWITCHES)
    for build in builds:
        spec = resolve_spec(build.encap, build.key, build.params_dict())
        normal = render(spec).files
        assert render(spec, variant=()).files == normal
        for name in build.switches:
            assert render(spec, variant=[name]).files != normal, (build.name, name)
    with pytest.raises(RenderError):
        render(spec, variant=["no_such_switch"])


def test_srv6_bench_summary_and_comparison_on_fake_runs():
    from sfcframe.bench import srv6

    def run(goodput, cpu, checked=100_000):
        return {"goodput_mbps": goodput, "cpu_s_per_mpkt": cpu, "retransmits": 3,
                "checked": checked, "mismatches": 0, "egress_misses": 0, "passed": True}

    cells = [{"row": row, "inner": "ipv4", "summary": srv6.summarize_cell(runs)}
             for row, runs in (("control", [run(3000, 5.0), run(3200, 5.2), run(3100, 5.1)]),
                               ("tcpip", [run(2500, 6.0), run(2400, 6.2), run(2600, 6.1)]))]
    assert cells[1]["summary"]["goodput_mbps"]["median"] == 2500
    (cmp,) = srv6.analyse(cells)
    assert cmp == {"row": "tcpip", "inner": "ipv4", "goodput_ratio": round(2500 / 3100, 3),
                   "cpu_ratio": round(6.1 / 5.1, 3)}
    assert srv6.plan_cells(["control", "tcpip"], ["ipv4", "ipv6"]) == [
        ("control", "ipv4"), ("tcpip", "ipv4"), ("control", "ipv6"), ("tcpip", "ipv6")]
