"""``sfcframe exporter``: a real Prometheus endpoint, scraped over loopback while a
proxy in a throw-away namespace handles frames; a damaged instance beside it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest
from fixtures.netns import SFCFRAME, mpls_frame, pin_path, sfc
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.kernel

SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
frames = [bytes.fromhex(h) for h in sys.argv[3:]]
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    for f in frames:
        s.send(f)
    time.sleep(0.001)
"""


def scrape(url: str) -> dict[str, list]:
    """{family name: [samples]} of one scrape, parsed by prometheus_client's own parser."""
    with urllib.request.urlopen(url, timeout=30) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def value(families: dict[str, list], sample_name: str, **labels: str) -> float:
    family = sample_name.removesuffix("_total").removesuffix("_bucket")
    found = [s.value for s in families.get(family, [])
             if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (sample_name, labels, families.get(family))
    return found[0]


def ingress_total(families: dict[str, list], proxy: str) -> float:
    return sum(s.value for s in families["sfcframe_ingress_packets"]
               if s.labels["proxy"] == proxy)


def up(bed, name: str, iface: str, *extra: str) -> None:
    proc = sfc("up", "--name", name, "--iface", iface, "--netns", bed.ns, *extra)
    assert proc.returncode == 0, proc.stderr


def test_exporter_serves_every_proxy_while_traffic_runs(bed):
    with bed.ipr() as ipr:  # a third interface pair, for the instance that gets damaged
        ipr.link("add", ifname="vc", kind="veth", peer="vd")
        for ifname in ("vc", "vd"):
            ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")
    busy, staged, broken = bed.instance(), bed.instance(), bed.instance()
    up(bed, busy, "vb", "--encap", "mpls", "--key", "tcpip", "--cache-size", "4096")
    up(bed, staged, "va", "--encap", "nsh", "--key", "tcpip", "--stage", "ioam",
       "--param", "max_ioam_bytes=64", "--ingress", "tc")
    up(bed, broken, "vc", "--encap", "mpls", "--key", "tcpip", "--mode", "static")

    exporter = subprocess.Popen([*SFCFRAME, "exporter", "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sender = None
    try:
        first = exporter.stdout.readline()
        assert "/metrics" in first, (first, exporter.poll())
        url = first.split()[first.split().index("at") + 1]
        assert url.startswith("http://127.0.0.1:")

        frames = [mpls_frame(seq).hex() for seq in range(1000, 1064)]
        sender = subprocess.Popen(["nsenter", f"--net=/run/netns/{bed.ns}", sys.executable,
                                   "-c", SENDER, "va", "20", *frames])
        deadline = time.monotonic() + 20
        cached = 0.0
        while cached == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            cached = value(scrape(url), "sfcframe_ingress_packets_total", proxy=busy,
                           outcome="cached", ingress_hook="xdp", mode="cache")
        assert cached > 0
        before = ingress_total(scrape(url), busy)
        time.sleep(0.5)
        got = scrape(url)
        after = ingress_total(got, busy)
        assert after > before  # read afresh on every scrape, while the frames arrive

        # no label called instance (Prometheus's own); hook and mode as labels
        for samples in got.values():
            for s in samples:
                assert "instance" not in s.labels, s
        assert value(got, "sfcframe_proxy_info", proxy=busy, encap="mpls", key="tcpip",
                     ingress_hook="xdp", mode="cache") == 1
        assert value(got, "sfcframe_proxy_info", proxy=staged, ingress_hook="tc") == 1
        assert value(got, "sfcframe_proxy_info", proxy=broken, mode="static") == 1
        assert value(got, "sfcframe_egress_packets_total", proxy=staged, ingress_hook="tc",
                     mode="cache", outcome="restored") == 0
        assert value(got, "sfcframe_cache_capacity", proxy=busy, cache="lru") == 4096
        assert 0 < value(got, "sfcframe_cache_entries", proxy=busy) <= 64
        assert value(got, "sfcframe_interface_info", proxy=staged, interface="va",
                     ingress_hook="tc", netns=bed.ns) == 1
        # the stage's counters and histogram
        assert value(got, "sfcframe_stage_packets_total", proxy=staged, stage="ioam",
                     map="stage_ioam_counters", outcome="filled") == 0
        buckets = [s for s in got["sfcframe_stage_histogram"]
                   if s.labels["proxy"] == staged and s.labels["map"] == "ioam_dwell_ns"]
        assert len(buckets) == 65 and buckets[-1].labels["le"] == "+Inf"
        assert value(got, "sfcframe_proxy_damaged", proxy=broken) == 0

        # one instance's pins gone: it is reported damaged, the others as before
        for pinned in pin_path(broken, "maps").iterdir():
            pinned.unlink()
        got = scrape(url)
        assert value(got, "sfcframe_proxy_damaged", proxy=broken) == 1
        assert not [s for s in got["sfcframe_proxy_info"] if s.labels["proxy"] == broken]
        assert value(got, "sfcframe_proxy_damaged", proxy=busy) == 0
        assert ingress_total(got, busy) >= after
        # (other tests' proxies may run at the same time)
        assert value(got, "sfcframe_exporter_proxies", status="damaged") >= 1
        assert value(got, "sfcframe_exporter_proxies", status="up") >= 2
    finally:
        if sender is not None:
            sender.kill()
            sender.wait()
        exporter.terminate()  # SIGTERM ends it cleanly
        out, err = exporter.communicate(timeout=30)
    assert exporter.returncode == 0, err
    assert f"{broken}: damaged" in err  # said once on stderr, why


def test_exporter_flags_are_checked():
    for listen, words in (("9580", "expected ADDR:PORT"), ("::1:9580", "in brackets"),
                          ("127.0.0.1:70000", "0..65535")):
        proc = sfc("exporter", "--listen", listen)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_stats_prometheus_is_the_same_exposition(bed):
    """stats --prometheus (textfile collectors): the exporter's names, parseable."""
    name = bed.instance()
    up(bed, name, "va", "--encap", "mpls", "--key", "tcpip", "--ingress", "tc")
    proc = sfc("stats", name, "--prometheus")
    assert proc.returncode == 0, proc.stderr
    got = {f.name: f.samples for f in text_string_to_metric_families(proc.stdout)}
    assert value(got, "sfcframe_ingress_packets_total", proxy=name, ingress_hook="tc",
                 mode="cache", outcome="cached") == 0
    assert "# HELP sfcframe_ingress_packets_total Packets the proxy's ingress program " \
           "handled (XDP or TC clsact ingress" in proc.stdout
