"""Runtime pieces that need no namespace: sizing, config merging, exposition."""

from __future__ import annotations

import re

import argparse
import json
import os
import math

import pytest
from fixtures.netns import sfc

from sfcframe.runtime import offloads, prometheus, sizing
from sfcframe.runtime.config import build_request
from sfcframe.runtime.errors import ConfigError
from sfcframe.runtime.state import check_name


# ---- size -----------------------------------------------------------------
@pytest.mark.parametrize(
    "text, pps",
    [("2.5Mpps", 2.5e6), ("800kpps", 8e5), ("1e6pps", 1e6), ("1e6", 1e6), ("10 Gpps", 1e10),
     ("300pps", 300.0), ("1.5M", 1.5e6), ("2kp/s", 2000.0)],
)
def test_parse_rate(text, pps):
    assert sizing.parse_rate(text) == pytest.approx(pps)


@pytest.mark.parametrize(
    "text, seconds",
    [("5ms", 5e-3), ("200us", 2e-4), ("200µs", 2e-4), ("1s", 1.0), ("500ns", 5e-7), ("1.5 ms", 1.5e-3)],
)
def test_parse_delay(text, seconds):
    assert sizing.parse_delay(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "fast", "5", "5 min", "-1ms", "0ms"])
def test_parse_delay_rejects(bad):
    with pytest.raises(ConfigError):
        sizing.parse_delay(bad)


@pytest.mark.parametrize("bad", ["", "lots", "5Tpps", "0pps", "-3kpps"])
def test_parse_rate_rejects(bad):
    with pytest.raises(ConfigError):
        sizing.parse_rate(bad)


def test_next_pow2():
    assert [sizing.next_pow2(n) for n in (1, 2, 3, 1000, 1024, 1025, 50000)] == [
        1, 2, 4, 1024, 1024, 2048, 65536]


def test_computed_bytes_follow_the_kernel_rule():
    # 48 B header + key 24 + value 40 per entry, 16 B per bucket
    assert sizing.computed_bytes(65536, 24, 40) == 65536 * (48 + 24 + 40 + 16)
    assert sizing.computed_bytes(1000, 21, 37) == 1000 * (48 + 24 + 40) + 1024 * 16


@pytest.mark.kernel
def test_size_command_measures_as_root(kernel_ready):
    lru = ("--param", "cache=lru")
    proc = sfc("size", "--rate", "2.5Mpps", "--delay", "5ms", "--json", *lru)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["in_flight"] == pytest.approx(12500) and doc["cache"] == "lru"
    slack = sizing.lru_slack()
    assert doc["slack"] == slack == 128 * os.cpu_count() and doc["basis"] == "rate x delay"
    assert doc["entries_needed"] == 50000 + slack and doc["cache_size"] == 65536
    assert doc["margin"] == 4 and doc["method"] == "measured"
    assert (doc["key_size"], doc["value_size"]) == (24, 44)  # the entry and its stamp
    computed = sizing.computed_bytes(65536, 24, 44)
    assert abs(doc["bytes"] - computed) / computed < 0.02  # the rule matches the kernel
    assert math.isclose(doc["bytes_per_entry"], doc["bytes"] / 65536, rel_tol=1e-3)

    short = sfc("size", "--rate", "800kpps", "--delay", "200us", "--param", "max_labels=4",
                "--margin", "8")
    assert short.returncode == 0, short.stderr
    assert short.stdout.startswith("--cache-size 2048  (2,048 entries,")
    assert len(short.stdout.splitlines()) <= 3 and "Table II" not in short.stdout
    ring = sfc("size", "--rate", "800kpps", "--delay", "200us", "--key", "metadata", "-v")
    assert ring.returncode == 0 and "--cache-size 640" in ring.stdout
    words = " ".join(ring.stdout.split())
    assert "The ring evicts nothing early" in words
    assert "LRU" not in words and "per-CPU" not in words  # not the LRU's essay
    text = sfc("size", "--rate", "800kpps", "--delay", "200us", "--encap", "mpls",
               "--param", "max_labels=4", "--margin", "8", *lru, "-v")
    assert text.returncode == 0, text.stderr
    assert "160 packets" in text.stdout and f"{1280 + slack:,} entries" in text.stdout
    assert "--cache-size 2048" in text.stdout and "Table II" in text.stdout
    assert "value 20 B" in text.stdout  # 4 + (4 - 1) labels x 4 B, the 4-byte stamp

    big = sfc("size", "--rate", "10Mpps", "--delay", "100ms", "--json", *lru)
    doc = json.loads(big.stdout)
    assert doc["method"] == "extrapolated" and doc["cache_size"] == 1 << 22
    assert abs(doc["bytes"] - sizing.computed_bytes(1 << 22, 24, 44)) / doc["bytes"] < 0.02

    # cache=assoc: the slot's key (not the bucket index), whole buckets, no slack, an
    # mmapable array created to measure
    assoc = json.loads(sfc("size", "--rate", "2.5Mpps", "--delay", "5ms", "--json",
                           "--param", "cache=assoc").stdout)
    assert assoc["cache"] == "assoc" and assoc["slack"] == 0
    assert assoc["entries_needed"] == 50000 and assoc["cache_size"] == 50000
    assert (assoc["key_size"], assoc["value_size"]) == (24, 40) and assoc["method"] == "measured"
    computed = sizing.assoc_bytes(50000, 24, 40)
    assert abs(assoc["bytes"] - computed) / computed < 0.02  # the model matches the kernel
    assert assoc["bytes_per_entry"] < 0.6 * doc["bytes_per_entry"]

    bad = sfc("size", "--rate", "fast", "--delay", "5ms")
    assert bad.returncode == 2 and "rate 'fast'" in bad.stderr.strip().splitlines()[-1]
    half = sfc("size", "--delay", "5ms")
    assert half.returncode == 2 and "--rate and --delay are required" in half.stderr
    both = sfc("size", "--rate", "1kpps", "--delay", "5ms", "--observe", "x")
    assert both.returncode == 2 and "not both" in both.stderr
    gone = sfc("size", "--observe", "sfct-no-such-instance")
    assert gone.returncode != 0 and "no such instance" in gone.stderr


def test_recommendation_adds_lru_slack_and_rounds_up():
    # the LRU keeps LOCAL_FREE_TARGET free nodes per CPU: that many entries per CPU are slack
    assert sizing.lru_slack(2) == 256 and sizing.lru_slack(8) == 1024
    # 29073 pkt/s x 5 ms = 145.4 in flight; x4 = 582, + 256 = 838 -> 1024 (2 CPUs)
    lru = {"cache": "lru"}
    rec = sizing.recommend(145.365, params=lru, margin=4, cpus=2)
    assert (rec.entries_needed, rec.cache_size, rec.slack) == (582 + 256, 1024, 256)
    # an observed peak: margin 2 by default
    obs = {"name": "x", "peak_in_flight": 1500, "rate_pps": 30000.0, "seconds": 5,
           "samples": 500, "interval_s": 0.01, "mean_in_flight": 900.0}
    rec = sizing.size_observed(obs, "mpls", "tcpip", {"max_labels": "10", **lru}, cpus=2)
    assert rec.basis == "observed peak" and rec.margin == 2.0
    assert (rec.entries_needed, rec.cache_size) == (3000 + 256, 4096)
    assert rec.delay_s == pytest.approx(0.05)  # sojourn = peak / rate
    assert "observed x for 5 s" in sizing.render_text(rec)


def test_assoc_recommendation_plans_for_75_percent_in_whole_buckets():
    """cache=assoc: no LRU slack, no power of two; at least in flight / 0.75 even
    with a small margin; whole buckets of 16."""
    assoc = {"cache": "assoc"}
    rec = sizing.recommend(145.365, params=assoc, margin=4, cpus=2)
    assert rec.cache == "assoc" and rec.slack == 0
    assert (rec.entries_needed, rec.cache_size) == (582, 592)  # 37 buckets
    rec = sizing.recommend(1500, params=assoc, margin=1, cpus=8)
    assert (rec.entries_needed, rec.cache_size, rec.slack) == (2000, 2000, 0)
    obs = {"name": "x", "peak_in_flight": 1500, "rate_pps": 30000.0, "seconds": 5,
           "samples": 500, "interval_s": 0.01, "mean_in_flight": 900.0}
    rec = sizing.size_observed(obs, "mpls", "tcpip", {"max_labels": "10", **assoc}, cpus=2)
    assert (rec.entries_needed, rec.cache_size) == (3000, 3008)
    text = sizing.render_text(rec)
    assert "cache=assoc: at most 75% full" in text and "--cache-size 3008" in text
    assert any("cache_horizon_ms" in note for note in rec.notes)
    # the model: 64 B of lanes + 16 slots of key 24 B + value 40 B per bucket, page-rounded
    assert sizing.assoc_bucket_bytes(24, 40) == 64 + 16 * 64
    assert sizing.assoc_bytes(10000, 24, 40) == -(-625 * 1088 // 4096) * 4096 + 4096


# ---- config ---------------------------------------------------------------
def _args(**kw) -> argparse.Namespace:
    base = dict(config=None, name=None, encap=None, key=None, iface=None, netns=None,
                cache_size=None, param=[], strict=None, xdp_mode=None, keep_offloads=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "proxy.toml"
    path.write_text(
        'name = "vnf1"\nencap = "mpls"\nkey = "tcpip"\ninterfaces = ["eth1", "eth2"]\n'
        'netns = "vnf"\ncache_size = 2048\nstrict = true\nxdp_mode = "native"\n'
        "[params]\npop = 2\nmax_labels = 10\n"
    )
    request = build_request(_args(config=str(path)))
    assert (request.name, request.encap, request.key, request.netns) == ("vnf1", "mpls", "tcpip", "vnf")
    assert request.interfaces == ["eth1", "eth2"] and request.xdp_mode == "native"
    assert request.params == {"pop": 2, "max_labels": 10, "cache_size": 2048, "strict": True}

    request = build_request(_args(config=str(path), iface=["eth9"], cache_size=64, strict=False,
                                  param=[("pop", "1")], xdp_mode="generic", name="vnf2"))
    assert request.name == "vnf2" and request.interfaces == ["eth9"]
    assert request.params == {"pop": "1", "max_labels": 10, "cache_size": 64, "strict": False}
    assert request.xdp_mode == "generic"


def test_request_errors(tmp_path):
    with pytest.raises(ConfigError, match="--name is required"):
        build_request(_args(encap="mpls", key="tcpip", iface=["a"]))
    with pytest.raises(ConfigError, match="xdp_mode 'turbo'"):
        path = tmp_path / "p.toml"
        path.write_text('xdp_mode = "turbo"\n')
        build_request(_args(config=str(path), name="n", encap="mpls", key="tcpip", iface=["a"]))
    with pytest.raises(ConfigError, match="cache_size must be an integer"):
        path.write_text("cache_size = true\n")
        build_request(_args(config=str(path)))
    # every core parameter's TOML key is checked against its one declaration
    for line, words in (("cache_size = 0", "cache_size=0 is outside 1..16777216"),
                        ('cache = "fifo"', "'fifo' is not one of auto|assoc|lru|ring"),
                        ("track_plain = 1", "track_plain must be true or false"),
                        ("ingress = 1", "ingress must be a string")):
        path.write_text(line + "\n")
        with pytest.raises(ConfigError, match=re.escape(words)):
            build_request(_args(config=str(path)))
    with pytest.raises(ConfigError, match="params.pop must be a single value"):
        path.write_text("[params]\npop = [1]\n")
        build_request(_args(config=str(path)))


@pytest.mark.parametrize("name", ["vnf1", "a", "proxy_2-b", "x" * 32])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "../x", "a/b", ".hidden", "-x", "x" * 33, "a b", "rel2\n", "a\nb", "x\x00"])
def test_bad_names(name):
    with pytest.raises(ConfigError):
        check_name(name)


@pytest.mark.parametrize(
    "top, params",
    [("cache_size = 1024", "cache_size = 2048"), ("strict = true", "strict = false"),
     ('ingress = "tc"', 'ingress = "xdp"'), ('mode = "static"', '"core.mode" = "cache"'),
     ('static_header = "1"', 'static_header = "2"')],
)
def test_file_settings_that_disagree_are_refused(tmp_path, top, params):
    path = tmp_path / "p.toml"
    path.write_text(f'name = "n"\nencap = "mpls"\nkey = "tcpip"\ninterfaces = ["a"]\n{top}\n'
                    f"[params]\n{params}\n")
    with pytest.raises(ConfigError, match="disagree"):
        build_request(_args(config=str(path)))


def test_file_settings_that_agree_and_flags_over_the_file(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('name = "n"\nencap = "mpls"\nkey = "tcpip"\ninterfaces = ["a"]\n'
                    "cache_size = 1024\n[params]\ncache_size = 1024\n")
    assert build_request(_args(config=str(path))).params["cache_size"] == 1024
    assert build_request(_args(config=str(path), cache_size=64)).params["cache_size"] == 64
    with pytest.raises(ConfigError, match="disagree"):
        build_request(_args(config=str(path), cache_size=64, param=[("cache_size", "128")]))


# ---- static header notation (set --static-header, up --static-header) ------
@pytest.mark.parametrize(
    "text, message",
    [("100,,200", "empty label"), (",100", "empty label"), ("100,", "empty label"),
     ("100, ,200", "empty label"), ("0x00064040", "bottom-of-stack"),
     ("0x0006414000064140", "bottom-of-stack")],
)
def test_mpls_static_header_refuses_malformed_stacks(text, message):
    from sfcframe.errors import ParamError
    from sfcframe.spec import resolve_spec

    with pytest.raises(ParamError, match=message):
        resolve_spec("mpls", "tcpip", {"mode": "static", "static_header": text})


def test_mpls_static_header_notations():
    from sfcframe.spec import resolve_spec

    def header(text: str) -> bytes:
        return resolve_spec("mpls", "tcpip", {"mode": "static", "static_header": text}).static_bytes

    labels = bytes.fromhex("00064040000c8140")  # 100, 200 (S), TTL 64
    assert header("100,200") == header("100, 200") == header("100 200") == labels
    assert header("0x" + labels.hex()) == header("hex:" + labels.hex()) == labels


# ---- prometheus -----------------------------------------------------------
def test_prometheus_exposition():
    doc = {
        "name": 'v"1',
        "encap": "mpls",
        "key": "metadata",
        "ingress_hook": "tc",
        "mode": "cache",
        "stages": ["ioam"],
        "counters": {"ingress": {"cached": 5, "plain": 0}, "egress": {"restored": 4}},
        "extra_counters": {"sfc_carrier_counters": {"copied": 3},
                           "stage_ioam_counters": {"filled": 2}},
        "histograms": {"ioam_dwell_ns": {"buckets": [0, 1, 2] + [0] * 61}},
        "labelled_counters": {"stage_apn_ids": {"label": "apn_id", "counts": {
            "0x1": {"packets": 7, "bytes": 700}}}},
        "cache": {"kind": "ring", "entries": 1, "capacity": 1024, "bytes_per_entry": 128.5},
        "maps": {"sfc_cache": {"memlock_bytes": 131584}},
        "settings": {"strict": True},
        "interfaces": [{"name": "eth1", "netns": None, "xdp_mode": None, "ok": True}],
    }
    text = prometheus.render([doc, {"name": "gone", "status": "damaged"}])
    assert text.endswith("\n")
    lines = text.splitlines()
    assert "# TYPE sfcframe_ingress_packets_total counter" in lines
    assert ('sfcframe_ingress_packets_total{ingress_hook="tc",mode="cache",outcome="cached",'
            'proxy="v\\"1"} 5.0') in lines
    assert ('sfcframe_key_packets_total{map="sfc_carrier_counters",outcome="copied",'
            'proxy="v\\"1"} 3.0') in lines
    assert ('sfcframe_stage_packets_total{map="stage_ioam_counters",outcome="filled",'
            'proxy="v\\"1",stage="ioam"} 2.0') in lines
    assert ('sfcframe_stage_labelled_bytes_total{apn_id="0x1",map="stage_apn_ids",'
            'proxy="v\\"1"} 700.0') in lines
    assert 'sfcframe_stage_histogram_bucket{le="3.0",map="ioam_dwell_ns",proxy="v\\"1"} 1.0' in lines
    assert 'sfcframe_stage_histogram_bucket{le="+Inf",map="ioam_dwell_ns",proxy="v\\"1"} 3.0' in lines
    assert "# TYPE sfcframe_cache_entries gauge" in lines
    assert 'sfcframe_cache_bytes_per_entry{cache="ring",proxy="v\\"1"} 128.5' in lines
    assert 'sfcframe_strict{proxy="v\\"1"} 1.0' in lines
    assert 'sfcframe_proxy_damaged{proxy="gone"} 1.0' in lines
    assert any(line.startswith("sfcframe_interface_info{") and 'ingress_hook="tc"' in line
               and line.endswith(" 1.0") for line in lines)
    assert not any('instance="' in line for line in lines)
    # every family: HELP then TYPE, each once
    names = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(names) == len(set(names))
    assert prometheus.render([]) == ""


def test_hints_name_the_namespace():
    from sfcframe.runtime.netns import hint

    assert hint("ns1", "ip", "link", "set", "dev", "x", "xdp", "off") == \
        "ip -n ns1 link set dev x xdp off"
    assert hint("ns1", "tc", "filter", "del", "dev", "x") == "tc -n ns1 filter del dev x"
    assert hint("ns1", "ethtool", "-K", "x", "gro", "off") == "ip netns exec ns1 ethtool -K x gro off"
    assert hint(None, "ip", "link") == "ip link"
