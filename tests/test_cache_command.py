"""``sfcframe cache NAME``: live entries decoded, on real proxies in a throw-away namespace."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, strategies as st
from fixtures.netns import mpls_frame, sfc



@pytest.mark.parametrize("encap, header, text", [
    ("mpls", "003e9140003ea33f", "1001/tc0/ttl64/S 1002/tc1/ttl63/S"),
    ("mpls", "", "(no labels: every label was popped)"),
    ("mpls", "003e914000", "1001/tc0/ttl64/S +00"),
    ("nsh", "0fc6010100010fff" + "01020304" * 4,
     "SPI 0x00010f SI 255 MD1 ttl 63 np 0x1 ctx 01020304:01020304:01020304:01020304"),
    ("nsh", "0fc6", "(truncated) 0fc6"),
    ("srv6", "", "(short: empty)"),
])
def test_headers_in_the_encapsulations_notation(encap, header, text):
    from sfcframe import discovery

    plugin = discovery.load("encap", encap).plugin
    assert plugin.describe_header(bytes.fromhex(header), {}) == text


def srv6_header() -> tuple[bytes, str]:
    """An outer IPv6 header, a Hop-by-Hop header and an SRH with an HMAC TLV, after End."""
    from sfcframe.encaps.srv6 import headers as h

    srh = h.srh(["fc00::c", "fc00::b", "fc00::a"], 1, h.NH_IPV4, tlvs=h.hmac_tlv(1, bytes(32)))
    outer = h.ipv6("fc00::1", "fc00::b", h.NH_HOPOPTS, hlim=63)
    return (outer + h.options_header(h.NH_ROUTING) + srh,
            "fc00::1 > fc00::b hlim 63 | HBH 8B | SRH SL 1 [fc00::c, *fc00::b, fc00::a] "
            "tlv 40B | inner IPv4")


def test_srv6_header_in_words():
    from sfcframe import discovery

    plugin = discovery.load("encap", "srv6").plugin
    header, text = srv6_header()
    assert plugin.describe_header(header, {}) == text
    cut = plugin.describe_header(header[:50], {})
    assert cut.startswith("fc00::1 > fc00::b hlim 63 | HBH 8B") and cut.endswith("+2 bytes")


@given(st.sampled_from(["mpls", "nsh", "srv6"]), st.binary(max_size=300))
def test_describe_header_never_raises(encap, header):
    """A half-written entry may hold any bytes: the text view takes them all."""
    from sfcframe import discovery

    assert isinstance(discovery.load("encap", encap).plugin.describe_header(header, {}), str)


def cache_doc(name: str, *extra: str) -> dict:
    proc = sfc("cache", name, "-j", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_entries(name: str, want: int) -> dict:
    deadline = time.monotonic() + 5
    while True:
        doc = cache_doc(name, "--limit", "0")
        if doc["entries"] >= want or time.monotonic() > deadline:
            return doc
        time.sleep(0.1)


@pytest.mark.kernel
def test_lru_entries_decoded(bed):
    name = bed.instance()
    up = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "vb",
             "--netns", bed.ns, "--cache-size", "1024")
    assert up.returncode == 0, up.stderr
    for seq in (1000, 1001, 1002):
        bed.send("va", mpls_frame(seq=seq))
    doc = wait_entries(name, 3)
    assert (doc["kind"], doc["entries"], doc["capacity"]) == ("lru", 3, 1024)
    assert doc["schema"] == 1 and doc["plain_markers"] == 0
    item = next(i for i in doc["items"] if i["key"]["seq"] == 1000)
    assert item["plain"] is False and item["age"] is None
    assert (item["key"]["saddr"], item["key"]["daddr"]) == ("10.1.0.1", "10.2.0.1")
    # mpls_frame: labels 1000..1002, tc 0, ttl 64..62; pop=1 leaves the lower two
    assert item["header"]["text"] == "1001/tc0/ttl63 1002/tc0/ttl62/S"
    assert item["outer_proto"] == "0x8847"

    assert len(cache_doc(name, "--limit", "1")["items"]) == 1
    text = sfc("cache", name)
    assert text.returncode == 0, text.stderr
    assert "cache lru, 3 of 1,024 entries" in text.stdout
    assert "1001/tc0/ttl63 1002/tc0/ttl62/S" in text.stdout and "age n/a" in text.stdout
    assert f":{item['key']['sport']} > " in text.stdout

    bad = sfc("cache", "sfct-no-such")
    assert bad.returncode == 1 and "no such instance" in bad.stderr


@pytest.mark.kernel
def test_ring_entries_with_age_in_packets(bed):
    name = bed.instance()
    up = sfc("up", "--name", name, "--encap", "mpls", "--key", "metadata", "--iface", "vb",
             "--netns", bed.ns, "--cache-size", "64", "--ingress", "tc")
    assert up.returncode == 0, up.stderr
    for seq in range(4):
        bed.send("va", mpls_frame(seq=seq))
    doc = wait_entries(name, 4)
    assert (doc["kind"], doc["entries"], doc["capacity"]) == ("ring", 4, 64)
    ages = [i["age"]["packets"] for i in doc["items"]]
    assert ages == [0, 1, 2, 3]  # newest first
    ids = [i["key"]["id"] for i in doc["items"]]
    assert ids == sorted(ids, reverse=True) and ids[0] - ids[-1] == 3
    assert all(i["header"]["text"].endswith("/S") for i in doc["items"])
    assert "age 0 packets" in sfc("cache", name).stdout


@pytest.mark.kernel
def test_assoc_entries_with_age_in_ms(bed):
    name = bed.instance()
    up = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "vb",
             "--netns", bed.ns, "--cache-size", "1024", "--cache", "assoc")
    assert up.returncode == 0, up.stderr
    started = time.monotonic()
    bed.send("va", mpls_frame(seq=1000))
    time.sleep(0.3)
    bed.send("va", mpls_frame(seq=1001))
    apart_ms = (time.monotonic() - started) * 1000  # the two arrivals are at most this apart
    doc = wait_entries(name, 2)
    assert (doc["kind"], doc["entries"]) == ("assoc", 2)
    assert doc["capacity"] >= 1024 and doc["capacity"] % 16 == 0  # whole 16-slot buckets
    newest, oldest = doc["items"]  # youngest first
    assert (newest["key"]["seq"], oldest["key"]["seq"]) == (1001, 1000)
    # generations are 4.19 ms steps of the coarse clock: within two steps of the gap
    assert 300 - 9 <= oldest["age"]["ms"] - newest["age"]["ms"] <= apart_ms + 9
    assert oldest["header"]["text"] == "1001/tc0/ttl63 1002/tc0/ttl62/S"
    assert " ms" in sfc("cache", name).stdout
