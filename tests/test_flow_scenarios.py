"""The flow keys with real traffic in namespaces (the demo's testbed: sender, SFF
stamping 10 MPLS labels per packet from the packet's own fields, the proxy around a
forwarding VNF, the receiver's checker verifying every packet's header): RTP streams,
ESP (raw and UDP-encapsulated, AES-GCM), a ping flood, iperf3 UDP, and all of them
with TCP at once through the auto key. Plus the ESP sender against scapy's
SecurityAssociation, byte for byte. Namespaces and the proxy go away even when a
test fails (the demo's teardown)."""

from __future__ import annotations

import pytest

from sfcframe.demo.flowtraffic import ESP_KEY, _udp_datagram, esp_payload, protocol_mask
from sfcframe.demo.run import DemoConfig, run_demo

#: (traffic, key, the key counter that must carry the stamped packets)
RUNS = [
    ("rtp", "rtp", ("rtp",)),
    ("esp", "esp", ("esp", "esp_in_udp")),
    ("icmp", "icmp", ("echo",)),
    ("udp", "udp", ("udp",)),
    ("mixed", "auto", ("tcpip", "rtp", "esp", "icmp", "udp")),
]


@pytest.mark.parametrize("traffic,key,counters", RUNS, ids=[f"{t}-{k}" for t, k, _ in RUNS])
def test_real_traffic_through_the_flow_keys(kernel_ready, traffic, key, counters):
    summary = run_demo(DemoConfig(encap="mpls", labels=10, vnf="forward", key=key, seconds=3,
                                  traffic=traffic, rtp_streams=50))
    doc = summary.as_dict()
    assert summary.passed, doc["reasons"]
    assert summary.stamped > 1000
    # every stamped packet cached, restored and found with its own header at the receiver,
    # but for the frames a full receiver backlog dropped after the proxy (counted by the veth)
    assert summary.cached == summary.restored == summary.stamped
    assert summary.checker["match"] + summary.dropped_toward_receivers == summary.stamped
    assert summary.checker["mismatch"] == summary.checker["unencapsulated"] == 0
    assert summary.misses == 0 and summary.ingress.get("collision", 0) == 0
    extra = summary.proxy_raw["extra_counters"]
    for direction in ("sfc_key_ingress", "sfc_key_egress"):
        moved = {n for n, v in extra[direction].items() if v}
        assert set(counters) <= moved, (direction, extra[direction])
        assert not moved & {"malformed", "error"}, extra[direction]
    keyed = sum(extra["sfc_key_ingress"][n] for n in counters)
    assert keyed >= summary.cached


def test_esp_sender_is_scapys_esp():
    """The demo's ESP (AES-GCM, RFC 4106) equals scapy's SecurityAssociation's, byte for
    byte, for a few sequence numbers and lengths (padding)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.ipsec import ESP, SecurityAssociation

    for seq, size in ((1, 0), (7, 1), (1000, 2), (2**32 - 1, 101)):
        inner = _udp_datagram(40000, 9, bytes(range(size % 256)) * (size // 256 + 1))[:8 + size]
        packet = IP(src="10.1.0.1", dst="10.2.0.1") / UDP(inner)
        sa = SecurityAssociation(ESP, spi=0x5FC00100, seq_num=seq, crypt_algo="AES-GCM",
                                 crypt_key=ESP_KEY, auth_algo="NULL")
        want = bytes(sa.encrypt(packet, iv=seq.to_bytes(8, "big")))[20:]
        assert esp_payload(0x5FC00100, seq, bytes(packet)[20:], 17) == want


def test_protocol_masks():
    assert protocol_mask("tcp") == 1 and protocol_mask("rtp") == 2
    assert protocol_mask("mixed") == 15 and protocol_mask("udpsame") == 2


def test_identical_udp_datagrams_collide_and_are_counted(kernel_ready):
    """The udp key's limit with real traffic: one datagram sent again and again, IP id
    included, behind a function holding every packet 3 ms. Every copy that arrives
    while another is in flight has the same key: a counted collision drop, never a
    wrong header; what is cached comes back with its own."""
    summary = run_demo(DemoConfig(encap="mpls", labels=10, vnf="delay", key="udp", seconds=3,
                                  traffic="udpsame"))
    assert summary.passed, summary.as_dict()["reasons"]
    assert summary.ingress["collision"] > summary.cached > 0
    assert summary.checker["mismatch"] == 0
    assert summary.cached == summary.restored == summary.checker["match"]
