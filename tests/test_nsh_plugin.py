"""The NSH encapsulation plugin: its Python reference, its scapy builders and,
on the kernel, its C compared byte for byte with that reference."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from sfcframe.encaps.nsh import ETH_P_NSH, NshEncap
from sfcframe.encaps.nsh.scapy_layers import Tlv, dissect, nsh_md1, nsh_md2, with_si
from sfcframe.errors import ParamError
from sfcframe.keys.tcpip import TcpIpKey
from sfcframe.plugin import EncapParse
from sfcframe.testrun import TC_ACT_OK, TC_ACT_SHOT, XDP_DROP, XDP_PASS

NSH = NshEncap()
KEY = TcpIpKey()
DEFAULT = {"max_md_bytes": 16, "max_ioam_bytes": 0}
ETH_P_IP = 0x0800
MACS = bytes.fromhex("020000000002" "020000000001")

#: every parameter set the kernel tests compile (one KernelProxy each)
PARAM_SETS = [{"max_md_bytes": 0, "max_ioam_bytes": 0}, {"max_md_bytes": 16, "max_ioam_bytes": 0}, {"max_md_bytes": 64, "max_ioam_bytes": 0}, {"max_md_bytes": 244, "max_ioam_bytes": 0}]
PARAM_IDS = [f"md{p['max_md_bytes']}" for p in PARAM_SETS]


def ether(ethertype: int) -> bytes:
    return MACS + struct.pack("!H", ethertype)


def inner_tcp(seq: int = 1000, payload: bytes = b"payload!", sport: int = 40000) -> bytes:
    return bytes(
        IP(src="192.0.2.1", dst="198.51.100.7", id=77)
        / TCP(sport=sport, dport=80, seq=seq, ack=5, window=512, flags="PA")
        / Raw(payload)
    )


def md2_of_size(md_bytes: int, **kw) -> bytes:
    """An MD type 2 header carrying exactly md_bytes (a multiple of 4) of TLVs."""
    assert md_bytes % 4 == 0
    tlvs = []
    while md_bytes:
        data_len = min(128, md_bytes - 4)
        tlvs.append(Tlv(0x0100 + len(tlvs), 7, bytes([len(tlvs) + 1]) * min(data_len, 127)))
        md_bytes -= tlvs[-1].wire_len
    header = nsh_md2(spi=kw.pop("spi", 0x123456), si=kw.pop("si", 200), tlvs=tlvs, **kw)
    return header


def set_byte(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + bytes([value]) + data[offset + 1 :]


# =========================================================================
# Pure Python: builders
# =========================================================================
def test_md1_bytes_and_dissection():
    header = nsh_md1(spi=0xABCDEF, si=9, context=bytes(range(16)), ttl=5, oam=1, unused1=1, unused2=0xA)
    # Ver 0, O 1, U 1, TTL 5 (000101), Length 6, U 1010, MD type 1, NP 1, SPI, SI
    assert header[:8] == bytes([0x31, 0x46, 0xA1, 0x01, 0xAB, 0xCD, 0xEF, 0x09])
    assert header[8:] == bytes(range(16))
    nsh = dissect(header)
    assert (nsh.ver, nsh.oam, nsh.unused1, nsh.ttl, nsh.length) == (0, 1, 1, 5, 6)
    assert (nsh.unused2, nsh.mdtype, nsh.nextproto, nsh.spi, nsh.si) == (0xA, 1, 1, 0xABCDEF, 9)
    assert nsh.context_header == bytes(range(16))


def test_md2_bytes_and_dissection():
    tlvs = [Tlv(0x0101, 0x01, b"\x01\x02\x03\x04"), Tlv(0xFFF0, 0x42, b"abcde", u_bit=1), Tlv(7, 8, b"")]
    header = nsh_md2(spi=1, si=2, tlvs=tlvs, ttl=63)
    # 8 + (4+4) + (4+8) + 4 = 32 bytes: Length 8
    assert len(header) == 32 and header[1] & 0x3F == 8 and header[2] & 0x0F == 2
    assert header[16:28] == bytes.fromhex("fff0428561626364" "65000000")
    nsh = dissect(header)
    assert [(t.class_, t.type, t.reserved, t.length) for t in nsh.vlch] == [
        (0x0101, 1, 0, 4),
        (0xFFF0, 0x42, 1, 5),
        (7, 8, 0, 0),
    ]
    assert bytes(nsh) == header


def test_md2_without_context_headers_is_8_bytes():
    header = nsh_md2(spi=3, si=4)
    assert header == bytes([0x0F, 0xC2, 0x02, 0x01, 0, 0, 3, 4])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), max_md=st.sampled_from([0, 3, 16, 18, 64, 127, 244]))
def test_strategy_headers_are_valid_and_dissect_back(data, max_md):
    values = {"max_md_bytes": max_md, "max_ioam_bytes": 0}
    header = data.draw(NSH.header_strategy(values))
    nsh = dissect(header)
    assert bytes(nsh) == header, "scapy must rebuild the same bytes"
    assert nsh.ver == 0 and nsh.nextproto == 1 and 2 <= nsh.si <= 255
    assert nsh.length * 4 == len(header) <= NSH.header_capacity(values)
    if nsh.mdtype == 2:
        assert len(header) - 8 <= max_md
        assert sum(4 + (t.length + 3) // 4 * 4 for t in nsh.vlch or []) == len(header) - 8
    else:
        assert nsh.mdtype == 1 and len(header) == 24
    parse = NSH.reference_ingress(header + inner_tcp(), values)
    assert parse == EncapParse("ok", len(header), ETH_P_IP, header)


@pytest.mark.parametrize("max_md", [0, 4, 16, 19, 20, 64, 244])
def test_example_header_is_valid(max_md):
    values = {"max_md_bytes": max_md, "max_ioam_bytes": 0}
    header = NSH.example_header(values)
    assert NSH.reference_ingress(header, values).outcome == "ok"
    assert dissect(header).mdtype == (2 if max_md >= 20 else 1)


# =========================================================================
# Pure Python: parameters and declared outcomes
# =========================================================================
@pytest.mark.parametrize("max_md, capacity", [(0, 24), (15, 24), (16, 24), (17, 25), (64, 72), (244, 252)])
def test_capacity_and_max_strip(max_md, capacity):
    values = {"max_md_bytes": max_md, "max_ioam_bytes": 0}
    assert NSH.header_capacity(values) == capacity == NSH.max_strip(values)


def test_param_range_is_enforced():
    from sfcframe.spec import resolve_spec

    assert resolve_spec("nsh", "tcpip", {"max_md_bytes": "244"}).header_capacity == 252
    for bad in ("245", "-1", "x"):
        with pytest.raises(ParamError):
            resolve_spec("nsh", "tcpip", {"max_md_bytes": bad})


def test_si_expired_is_an_egress_outcome_that_drops():
    from sfcframe.composer import render
    from sfcframe.spec import resolve_spec

    spec = resolve_spec("nsh", "tcpip", {})
    (outcome,) = [o for o in spec.egress_outcomes if o.name == "si_expired"]
    assert outcome.policy == "drop" and outcome.source == "nsh"
    assert "SFC_EG_SI_EXPIRED" in render(spec).files["sfc_proxy.h"]


# =========================================================================
# Pure Python: the reference parser
# =========================================================================
MD1 = nsh_md1(spi=0x010203, si=255, context=bytes(range(100, 116)))
MD2 = md2_of_size(16)  # exactly the default max_md_bytes


def test_reference_md1():
    parse = NSH.reference_ingress(MD1 + inner_tcp(), DEFAULT)
    assert parse == EncapParse("ok", strip_len=24, inner_ethertype=ETH_P_IP, cached=MD1)


def test_reference_md2():
    parse = NSH.reference_ingress(MD2 + inner_tcp(), DEFAULT)
    assert parse == EncapParse("ok", strip_len=24, inner_ethertype=ETH_P_IP, cached=MD2)
    empty = nsh_md2(spi=1, si=2)
    assert NSH.reference_ingress(empty, {"max_md_bytes": 0, "max_ioam_bytes": 0}) == EncapParse("ok", 8, ETH_P_IP, empty)


def test_reference_md1_accepted_whatever_max_md_bytes():
    assert NSH.reference_ingress(MD1, {"max_md_bytes": 0, "max_ioam_bytes": 0}).outcome == "ok"


@pytest.mark.parametrize("header", [MD1, MD2, nsh_md2(spi=1, si=2)], ids=["md1", "md2", "md2-empty"])
def test_reference_truncations(header):
    for n in range(len(header)):
        assert NSH.reference_ingress(header[:n], DEFAULT).outcome == "malformed", n
    assert NSH.reference_ingress(header, DEFAULT).outcome == "ok"


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reference_bad_version(version):
    for header in (MD1, MD2):
        bad = set_byte(header, 0, header[0] | version << 6)
        assert NSH.reference_ingress(bad + inner_tcp(), DEFAULT).outcome == "malformed"


@pytest.mark.parametrize("md_type", [0x0, 0x3, 0x4, 0xE, 0xF])
def test_reference_bad_md_type(md_type):
    for header in (MD1, MD2):
        bad = set_byte(header, 2, (header[2] & 0xF0) | md_type)
        assert NSH.reference_ingress(bad + inner_tcp(), DEFAULT).outcome == "malformed"


@pytest.mark.parametrize("words", [0, 1, 2, 3, 4, 5, 7, 8, 63])
def test_reference_md1_length_must_be_6(words):
    bad = set_byte(MD1, 1, (MD1[1] & 0xC0) | words)
    assert NSH.reference_ingress(bad + bytes(300), {"max_md_bytes": 244, "max_ioam_bytes": 0}).outcome == "malformed"


@pytest.mark.parametrize("words", [0, 1])
def test_reference_md2_length_below_2(words):
    bad = set_byte(MD2, 1, (MD2[1] & 0xC0) | words)
    assert NSH.reference_ingress(bad + inner_tcp(), DEFAULT).outcome == "malformed"


@pytest.mark.parametrize("max_md", [0, 16, 18, 64, 240])
def test_reference_md2_too_deep(max_md):
    values = {"max_md_bytes": max_md, "max_ioam_bytes": 0}
    limit = max_md // 4 * 4
    assert NSH.reference_ingress(md2_of_size(limit) + inner_tcp(), values).outcome == "ok"
    assert NSH.reference_ingress(md2_of_size(limit + 4) + inner_tcp(), values).outcome == "too_deep"


def test_reference_check_order():
    # too_deep is decided from the base header, before the header is known to be complete
    big = md2_of_size(64)
    assert NSH.reference_ingress(big[:8], DEFAULT).outcome == "too_deep"
    # truncation (malformed) before the next protocol
    ipv6 = set_byte(MD1, 3, 0x2)
    assert NSH.reference_ingress(ipv6[:23], DEFAULT).outcome == "malformed"
    assert NSH.reference_ingress(ipv6, DEFAULT).outcome == "unsupported_inner"
    # version before MD type and length, MD type before length and next protocol
    assert NSH.reference_ingress(set_byte(big, 0, 0x40)[:8], DEFAULT).outcome == "malformed"
    assert NSH.reference_ingress(set_byte(ipv6, 2, 0x03), DEFAULT).outcome == "malformed"


NEXT_PROTOCOLS = {
    0x0: "malformed",
    0x1: "ok",
    0x2: "unsupported_inner",
    0x3: "unsupported_inner",
    0x4: "unsupported_inner",
    0x5: "unsupported_inner",
    0x6: "unsupported_inner",  # IOAM (RFC 9452): not accepted with max_ioam_bytes=0
    0x7F: "malformed",
    0xFE: "malformed",
    0xFF: "malformed",
}


@pytest.mark.parametrize("next_proto, outcome", sorted(NEXT_PROTOCOLS.items()))
def test_reference_next_protocols(next_proto, outcome):
    for header in (MD1, MD2):
        parse = NSH.reference_ingress(set_byte(header, 3, next_proto) + inner_tcp(), DEFAULT)
        assert parse.outcome == outcome
        if outcome != "ok":
            assert parse == EncapParse(outcome)


@pytest.mark.parametrize("si", [2, 3, 128, 254, 255])
def test_reference_restore_decrements_si(si):
    for header in (with_si(MD1, si), with_si(MD2, si)):
        outcome, restored = NSH.reference_restore(header, DEFAULT)
        assert outcome == "ok" and restored == with_si(header, si - 1)


@pytest.mark.parametrize("si", [0, 1])
def test_reference_restore_si_expired(si):
    for header in (with_si(MD1, si), with_si(MD2, si)):
        assert NSH.reference_restore(header, DEFAULT) == ("si_expired", b"")


# =========================================================================
# Kernel: the generated C against the reference
# =========================================================================
@pytest.fixture(scope="module")
def proxies():
    from sfcframe.testkit.kernel import KernelProxy

    built = {ident: KernelProxy("nsh", "tcpip", params) for ident, params in zip(PARAM_IDS, PARAM_SETS)}
    yield built
    for proxy in built.values():
        proxy.close()


def _zeroed(proxy) -> dict[str, dict[str, int]]:
    return {
        "ingress": dict.fromkeys(proxy.ingress_names, 0),
        "egress": dict.fromkeys(proxy.egress_names, 0),
    }


def _fresh(proxy, strict: bool = False):
    proxy.clear()
    proxy.set_strict(strict)
    return proxy


def _value(proxy, header: bytes) -> bytes:
    head = struct.pack("!BBH", 0, len(header), ETH_P_NSH)
    return (head + header).ljust(proxy.value_size(), b"\0")


def expect_ingress(frame: bytes, values) -> tuple[str, bytes]:
    """(outcome, stripped frame or b"") for an NSH frame, using the references."""
    parse = NSH.reference_ingress(frame[14:], values)
    if parse.outcome != "ok":
        return parse.outcome, b""
    outcome, _ = KEY.reference_key(frame[14 + parse.strip_len :], parse.inner_ethertype, {})
    if outcome != "ok":
        return outcome, b""
    return "cached", frame[:12] + struct.pack("!H", ETH_P_IP) + frame[14 + parse.strip_len :]


def check_ingress(proxy, frame: bytes, strict: bool) -> tuple[str, bytes]:
    """Run one frame on a fresh proxy and check verdict, output and counters."""
    _fresh(proxy, strict)
    values = proxy.spec.encap_params
    outcome, stripped = expect_ingress(frame, values)
    result = proxy.ingress(frame)
    counts = _zeroed(proxy)
    counts["ingress"][outcome] = 1
    assert proxy.counters() == counts, (outcome, frame.hex())
    if outcome == "cached":
        assert result.retval == XDP_PASS and result.packet == stripped
        parse = NSH.reference_ingress(frame[14:], values)
        assert list(proxy.cache().values()) == [_value(proxy, parse.cached)]
    else:
        assert result.retval == (XDP_DROP if strict else XDP_PASS), outcome
        if not strict:
            assert result.packet == frame, "a packet that was not cached passes unmodified"
        assert proxy.cache() == {}
    return outcome, result.packet


def round_trip(proxy, header: bytes, inner: bytes):
    """Ingress then egress of one frame; returns the egress result."""
    frame = ether(ETH_P_NSH) + header + inner
    outcome, stripped = check_ingress(proxy, frame, strict=False)
    assert outcome == "cached"
    assert stripped == ether(ETH_P_IP) + inner
    return proxy.egress(stripped)


inner_strategy = st.builds(
    inner_tcp,
    seq=st.integers(0, 2**32 - 1),
    payload=st.binary(min_size=0, max_size=64),
    sport=st.integers(1, 65535),
)
KERNEL_PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.kernel
@pytest.mark.parametrize("ident", PARAM_IDS)
@KERNEL_PROPERTY
@given(data=st.data())
def test_kernel_round_trip(proxies, ident, data):
    proxy = proxies[ident]
    values = proxy.spec.encap_params
    header = data.draw(NSH.header_strategy(values), label="header")
    inner = data.draw(inner_strategy, label="inner")
    result = round_trip(proxy, header, inner)
    outcome, restored = NSH.reference_restore(header, values)
    assert outcome == "ok"
    assert result.retval == TC_ACT_OK
    assert result.packet == ether(ETH_P_NSH) + restored + inner
    assert dissect(restored).si == dissect(header).si - 1
    assert proxy.counters()["egress"] == {**_zeroed(proxy)["egress"], "restored": 1}
    assert proxy.cache() == {}


@pytest.mark.kernel
@pytest.mark.parametrize("ident", PARAM_IDS)
@pytest.mark.parametrize("si", [2, 3, 100, 254, 255])
@pytest.mark.parametrize("md", ["md1", "md2"])
def test_kernel_si_decremented_by_one(proxies, ident, si, md):
    proxy = proxies[ident]
    header = with_si(MD1 if md == "md1" else NSH.example_header(proxy.spec.encap_params), si)
    assert NSH.reference_ingress(header, proxy.spec.encap_params).outcome == "ok"
    result = round_trip(proxy, header, inner_tcp())
    assert result.retval == TC_ACT_OK
    assert result.packet == ether(ETH_P_NSH) + with_si(header, si - 1) + inner_tcp()


@pytest.mark.kernel
@pytest.mark.parametrize("ident", PARAM_IDS)
@pytest.mark.parametrize("si", [0, 1])
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_kernel_si_expired_dropped_and_counted(proxies, ident, si, strict):
    proxy = proxies[ident]
    for header in (with_si(MD1, si), with_si(NSH.example_header(proxy.spec.encap_params), si)):
        frame = ether(ETH_P_NSH) + header + inner_tcp()
        check_ingress(proxy, frame, strict)  # ingress does not look at the SI
        result = proxy.egress(ether(ETH_P_IP) + inner_tcp())
        assert result.retval == TC_ACT_SHOT
        counts = _zeroed(proxy)
        counts["ingress"]["cached"] = 1
        counts["egress"]["si_expired"] = 1
        assert proxy.counters() == counts
        assert proxy.cache() == {}, "the expired packet's entry is deleted"


@pytest.mark.kernel
@pytest.mark.parametrize("ident", PARAM_IDS)
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("md", ["md1", "md2", "md2-empty"])
def test_kernel_every_truncation(proxies, ident, strict, md):
    proxy = proxies[ident]
    values = proxy.spec.encap_params
    header = {"md1": MD1, "md2": NSH.example_header(values), "md2-empty": nsh_md2(spi=9, si=9)}[md]
    full = ether(ETH_P_NSH) + header + inner_tcp()
    seen = set()
    for n in range(14, len(full) + 1):
        seen.add(check_ingress(proxy, full[:n], strict)[0])
    assert seen == {"malformed", "cached"}


@pytest.mark.kernel
@pytest.mark.parametrize("ident", PARAM_IDS)
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("next_proto, outcome", sorted(NEXT_PROTOCOLS.items()))
def test_kernel_next_protocols(proxies, ident, strict, next_proto, outcome):
    proxy = proxies[ident]
    for header in (MD1, NSH.example_header(proxy.spec.encap_params)):
        frame = ether(ETH_P_NSH) + set_byte(header, 3, next_proto) + inner_tcp()
        seen, _ = check_ingress(proxy, frame, strict)
        assert seen == ("cached" if outcome == "ok" else outcome)


@pytest.mark.kernel
@pytest.mark.parametrize("ident", PARAM_IDS)
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_kernel_md2_too_deep(proxies, ident, strict):
    proxy = proxies[ident]
    limit = proxy.spec.encap_params["max_md_bytes"] // 4 * 4
    at_limit = ether(ETH_P_NSH) + md2_of_size(limit) + inner_tcp()
    assert check_ingress(proxy, at_limit, strict)[0] == "cached"
    if limit + 4 <= 244:
        over = ether(ETH_P_NSH) + md2_of_size(limit + 4) + inner_tcp()
        assert check_ingress(proxy, over, strict)[0] == "too_deep"
        assert check_ingress(proxy, over[: 14 + 8], strict)[0] == "too_deep"


BAD_HEADERS = {
    "version-1": set_byte(MD1, 0, MD1[0] | 0x40),
    "version-3": set_byte(MD2, 0, MD2[0] | 0xC0),
    "md-type-0": set_byte(MD1, 2, 0x00),
    "md-type-3": set_byte(MD2, 2, 0x03),
    "md-type-15": set_byte(MD1, 2, 0xFF),
    "md1-length-5": set_byte(MD1, 1, (MD1[1] & 0xC0) | 5),
    "md1-length-7": set_byte(MD1, 1, (MD1[1] & 0xC0) | 7) + bytes(4),
    "md2-length-0": set_byte(MD2, 1, MD2[1] & 0xC0),
    "md2-length-1": set_byte(MD2, 1, (MD2[1] & 0xC0) | 1),
    "md2-length-63": set_byte(MD2, 1, MD2[1] | 0x3F),
}


@pytest.mark.kernel
@pytest.mark.parametrize("ident", PARAM_IDS)
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("name", sorted(BAD_HEADERS))
def test_kernel_bad_headers(proxies, ident, strict, name):
    proxy = proxies[ident]
    frame = ether(ETH_P_NSH) + BAD_HEADERS[name] + inner_tcp()
    outcome, _ = check_ingress(proxy, frame, strict)
    assert outcome in ("malformed", "too_deep")
