"""The apn stage in the real kernel (BPF_PROG_TEST_RUN through sfcframe's test kit):
APN in the Hop-by-Hop header, a Destination option and an SRH TLV restored byte
for byte; the DSCP / Traffic Class mapping and its undo with correct inner
checksums; skb->mark; the per-APN-ID counters and their overflow."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe_apn import header, qos
from sfcframe_apn.stage import IN_DOH, IN_HBH, IN_SRH

SID = "fc00::a"
PROPERTY = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
SRV6 = {"sid": SID, "max_ext_bytes": 64, "max_segments": 4, "max_tlv_bytes": 64}
BUILDS = [
    pytest.param("tcpip", {**SRV6}, id="tcpip-xdp-count"),
    pytest.param("tcpip", {**SRV6, "map": "dscp"}, id="tcpip-xdp-dscp"),
    pytest.param("tcpip", {**SRV6, "map": "dscp", "ingress": "tc"}, id="tcpip-tc-dscp"),
    pytest.param("tcpip", {**SRV6, "map": "dscp", "family": "ipv6"}, id="tcpip6-xdp-dscp"),
    pytest.param("metadata", {**SRV6, "map": "dscp", "ingress": "tc"}, id="metadata-tc-dscp"),
    pytest.param("tcpip", {**SRV6, "map": "mark", "ingress": "tc"}, id="tcpip-tc-mark"),
]
ID32 = 0x300A0C08  # APP-Group 0x300A, User-Group 0x0C08


def apn_frame(harness, kind: int, apn: bytes, inner: bytes, family: int = qos.ETH_P_IP) -> bytes:
    stage = harness.proxy.spec.stages[0]
    hdr = harness.encap.carrier_embed(stage.carrier, harness.encap.example_header(
        harness.encap_values, family), kind, apn, harness.encap_values)
    return harness.frame(hdr, inner)


def kinds(harness) -> dict[str, int]:
    stage = harness.proxy.spec.stages[0]
    hbh, doh, srh = stage.plugin.stage_kinds(stage.values)
    return {"hbh": hbh, "doh": doh, "srh": srh}


def mapping(**slots) -> dict[str, int]:
    """Settings: slot i maps APN ID id<i> to value<i>."""
    return {k: v for k, v in slots.items()}


settings_values = st.fixed_dictionaries({
    "enabled": st.sampled_from([1, 1, 0]),
    "mask": st.sampled_from([(1 << 64) - 1, 0xFFFF0000, 0]),
    "id0": st.sampled_from([ID32, 0, 1]),
    "value0": st.integers(0, 63),
    "fallback": st.sampled_from([64, 10]),
})


@pytest.mark.kernel
@pytest.mark.parametrize("key, params", BUILDS)
@PROPERTY
@given(data=st.data())
def test_round_trip_restores_apn_byte_exact_and_undoes_the_mapping(harness_factory, key, params,
                                                                    data):
    """Any APN header at any of the three places, any inner packet, a function that
    forwards, routes or re-marks: the oracle (stage, carrier and key references)
    predicts every output byte, the restored outer headers included."""
    from sfcframe.testkit.packets import (inner_strategy, vnf_identity, vnf_remark,
                                          vnf_ttl_decrement)

    harness = harness_factory("srv6", key, stages=("apn",), **params)
    stage = harness.proxy.spec.stages[0]
    if stage.values["map"] != "none":
        chosen = data.draw(settings_values, label="settings")
        if stage.values["map"] == "mark":
            chosen = {**chosen, "value0": chosen["value0"] + 0x1000, "fallback": 1 << 32}
        harness.set_stage_settings("apn", chosen)
    family = data.draw(st.sampled_from(harness.inner_ethertypes), label="family")
    hdr = data.draw(harness.encap.header_strategy(harness.encap_values, family), label="header")
    kind, body = data.draw(stage.plugin.body_strategy(stage.values), label="apn")
    hdr = harness.encap.carrier_embed(stage.carrier, hdr, kind, body, harness.encap_values)
    assert harness.encap.carrier_find(stage.carrier, hdr, kind, harness.encap_values) is not None
    inner = data.draw(inner_strategy(family), label="inner")
    vnf = data.draw(st.sampled_from([vnf_identity, vnf_ttl_decrement, vnf_remark]), label="vnf")
    ingress, egress = harness.round_trip(harness.frame(hdr, inner), vnf)
    assert ingress.expect.outcome == "cached"
    assert egress is not None and egress.expect.outcome == "restored"


def _ip_ok(l3: bytes) -> bool:
    """A correct IPv4 header checksum (scapy recomputes it)."""
    from scapy.layers.inet import IP

    pkt = IP(l3)
    shown = pkt.chksum
    del pkt.chksum
    return IP(bytes(pkt)).chksum == shown


@pytest.mark.kernel
@pytest.mark.parametrize("where", ["hbh", "doh", "srh"])
@pytest.mark.parametrize("ingress", ["xdp", "tc"])
def test_dscp_mapped_for_the_function_and_undone_at_egress(harness_factory, where, ingress):
    from scapy.layers.inet import IP

    from sfcframe.testkit.packets import tcp_ipv4

    harness = harness_factory("srv6", "tcpip", stages=("apn",), map="dscp", ingress=ingress,
                              **SRV6)
    harness.set_stage_settings("apn", mapping(id0=ID32, value0=46))  # EF
    pkt = IP(tcp_ipv4(seq=7))
    pkt.tos = 0x29  # DSCP 10 (AF11), ECN 01
    del pkt.chksum
    inner = bytes(pkt)
    apn = header.ApnHeader(1, ID32, para_type=0xC000, params=(1000, 5)).pack()
    frame = apn_frame(harness, kinds(harness)[where], apn, inner)
    ingress_run, egress_run = harness.round_trip(frame, lambda f: f)
    seen = ingress_run.result.packet[14:]
    assert seen[1] == (46 << 2) | 0x01 and _ip_ok(seen), "the function sees EF, ECN kept"
    restored = egress_run.result.packet
    assert restored.endswith(inner), "egress gave the packet its DSCP and checksum back"
    outer = restored[14:-len(inner)]
    found = harness.encap.carrier_find("apn", outer, kinds(harness)[where], harness.encap_values)
    assert found and outer[found[0]:found[0] + found[1]] == apn, "APN restored as it came"
    assert egress_run.expect.stage_counters == {"apn": "undone"}


@pytest.mark.kernel
def test_ipv6_traffic_class_mapped_and_undone(harness_factory):
    from sfcframe.testkit.packets import tcp_ipv6

    harness = harness_factory("srv6", "tcpip", stages=("apn",), map="dscp", family="ipv6",
                              **SRV6)
    harness.set_stage_settings("apn", mapping(id0=0x0123456789ABCDEF, value0=34))
    inner = bytearray(tcp_ipv6())
    inner[0], inner[1] = 0x60 | (0xB8 >> 4), ((0xB8 & 0xF) << 4) | (inner[1] & 0x0F)  # TC 0xB8
    inner = bytes(inner)
    apn = header.ApnHeader(3, 0x0123456789ABCDEF << 64 | 0x42).pack()
    ingress_run, egress_run = harness.round_trip(
        apn_frame(harness, kinds(harness)["hbh"], apn, inner, qos.ETH_P_IPV6), lambda f: f)
    assert qos.tos_of(ingress_run.result.packet[14:], qos.ETH_P_IPV6) == 34 << 2
    assert egress_run.result.packet.endswith(inner)


@pytest.mark.kernel
def test_a_function_that_remarks_keeps_its_dscp(harness_factory):
    from sfcframe.testkit.packets import tcp_ipv4

    harness = harness_factory("srv6", "tcpip", stages=("apn",), map="dscp", **SRV6)
    harness.set_stage_settings("apn", mapping(id0=ID32, value0=46))
    apn = header.ApnHeader(1, ID32).pack()

    def policer(frame: bytes) -> bytes:  # marks EF traffic down to CS1
        l3 = qos.with_tos(frame[14:], qos.ETH_P_IP, 8 << 2)
        return frame[:14] + l3

    _, egress_run = harness.round_trip(apn_frame(harness, kinds(harness)["srh"], apn,
                                                 tcp_ipv4()), policer)
    assert egress_run.expect.stage_counters == {"apn": "kept"}
    assert egress_run.result.packet[-len(tcp_ipv4()):][1] == 8 << 2


@pytest.mark.kernel
def test_mark_for_in_kernel_functions(harness_factory):
    from sfcframe.testkit.packets import tcp_ipv4

    harness = harness_factory("srv6", "tcpip", stages=("apn",), map="mark", ingress="tc", **SRV6)
    harness.set_stage_settings("apn", mapping(id0=ID32, value0=0xA1))
    frame = apn_frame(harness, kinds(harness)["hbh"], header.ApnHeader(1, ID32).pack(),
                      tcp_ipv4())
    ingress_run = harness.check_ingress(frame)
    assert ingress_run.result.mark == 0xA1
    egress_run = harness.check_egress(ingress_run.result.packet, mark=0xA1)
    assert egress_run.expect.stage_counters == {"apn": "undone"}
    assert egress_run.result.mark == 0


@pytest.mark.kernel
def test_counters_per_apn_id_and_other_when_full(harness_factory):
    from sfcframe.testkit.packets import tcp_ipv4

    harness = harness_factory("srv6", "tcpip", stages=("apn",), max_ids=3, **SRV6)
    ids = [0x11, 0x22, 0x22, 0x33, 0x44, 0x55, 0x22]
    sizes = {}
    for seq, ident in enumerate(ids):
        inner = tcp_ipv4(seq=seq, payload=bytes(seq))
        where = ("hbh", "doh", "srh")[seq % 3]
        harness.check_ingress(apn_frame(harness, kinds(harness)[where],
                                        header.ApnHeader(1, ident).pack(), inner))
        sizes.setdefault(ident, []).append(len(inner))
    harness.check_ingress(harness.example_frame(tcp_ipv4(seq=99)))  # no APN at all
    counts = harness.proxy.labelled("apn", "ids")
    first = {f"0x{i:08x}" for i in (0x11, 0x22)}
    assert first <= set(counts)
    assert counts["0x00000022"] == {"packets": 3, "bytes": sum(sizes[0x22])}
    labels = set(counts) - {"other"}
    assert len(labels) == 3 and "none" not in labels or len(labels) == 3
    total = sum(c["packets"] for c in counts.values())
    assert total == len(ids) + 1, counts  # nothing uncounted
    assert counts["other"]["packets"] == len(ids) + 1 - sum(
        c["packets"] for label, c in counts.items() if label != "other")
    assert counts["other"]["packets"] >= 2
