"""exptag, tested as a third party tests a plugin: through sfcframe's public
modules (discovery, spec, composer, testkit) and the real kernel.

The generic properties are sfcframe's conformance kit (one line, below). What is
left here is exptag's own: its reference against the bytes the README specifies,
its parameter, its outcomes in the kernel.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe import discovery
from sfcframe.composer import render
from sfcframe.errors import ParamError
from sfcframe.spec import resolve_spec
from sfcframe.testkit.conformance import conformance_suite
from sfcframe.testkit.packets import frame, inner_tcp_strategy, tcp_ipv4, vnf_ttl_decrement
from sfcframe.testrun import XDP_DROP, XDP_PASS
from sfcframe_exptag import ETH_P_EXPTAG, ExpTagEncap, exptag_header

#: sfcframe's generic properties on exptag with the built-in keys, both hooks, every
#: cache kind (round trips, every truncation, foreign and plain traffic, counters,
#: determinism of the rendered C)
TestConformance = conformance_suite("sfcframe-exptag")

BUMPS = [0, 1, 255]
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def restored(tag: int, bump: int) -> bytes:
    """What egress must push back: written out here, not taken from the plugin."""
    return struct.pack("!HH", (tag + bump) % 65536, 0x0800)


# ---- discovery and rendering (no kernel) -----------------------------------
def test_found_through_its_entry_point_with_its_distribution():
    loaded = discovery.load("encap", "exptag")
    assert isinstance(loaded.plugin, ExpTagEncap)
    assert (loaded.distribution, loaded.version) == ("sfcframe-exptag", "0.1.0")
    assert (loaded.plugin.template_dir() / loaded.plugin.template).is_file(), (
        "exptag.c.j2 must be installed next to the module (package data)"
    )
    names = [p.name for p in discovery.load_all("encap")[0]]
    assert "exptag" in names


def test_rendered_c_carries_the_parameter_and_the_provenance():
    text = render(resolve_spec("exptag", "tcpip", {"bump": 7})).files["sfc_proxy.c"]
    assert "#define EXPTAG_BUMP\t\t7" in text
    assert "#define SFC_ENCAP_ETHERTYPE\t0x88B5" in text
    assert "encap exptag from sfcframe-exptag 0.1.0" in text


@pytest.mark.parametrize("bump", [-1, 256, "x"])
def test_bump_out_of_range_is_refused(bump):
    with pytest.raises(ParamError, match="bump"):
        resolve_spec("exptag", "tcpip", {"bump": bump})


# ---- reference (pure Python) -----------------------------------------------
DEFAULTS = {"bump": 0}


@pytest.mark.parametrize(
    "payload, outcome",
    [
        (b"", "malformed"),
        (b"\x12\x34\x08", "malformed"),
        (exptag_header(0x1234, 0x0800), "ok"),  # the inner packet is the key's business
        (exptag_header(0x1234, 0x0800) + tcp_ipv4(), "ok"),
        (exptag_header(0x1234, 0x86DD) + tcp_ipv4(), "unsupported_inner"),
        (exptag_header(0x1234, 0x0600) + tcp_ipv4(), "unsupported_inner"),
        (exptag_header(0x1234, 0x88B5) + tcp_ipv4(), "unsupported_inner"),
        (exptag_header(0x1234, 0xFFFF) + tcp_ipv4(), "unsupported_inner"),
        (exptag_header(0x1234, 0x05FF) + tcp_ipv4(), "malformed"),
        (exptag_header(0x1234, 0x0000) + tcp_ipv4(), "malformed"),
    ],
)
def test_reference_outcomes(payload, outcome):
    assert ExpTagEncap().reference_ingress(payload, DEFAULTS).outcome == outcome


def test_reference_caches_and_strips_exactly_four_bytes():
    header = exptag_header(0xBEEF)
    parse = ExpTagEncap().reference_ingress(header + tcp_ipv4(), DEFAULTS)
    assert (parse.strip_len, parse.inner_ethertype, parse.cached) == (4, 0x0800, header)


def test_reference_truncations_are_malformed():
    """The header cut (fewer than 4 bytes) is the encapsulation's malformed; a cut
    inner packet is for the key to judge (the kit checks the kernel on each length)."""
    header = exptag_header(0x1234)
    for length in range(4):
        assert ExpTagEncap().reference_ingress(header[:length], DEFAULTS).outcome == "malformed"


@given(tag=st.integers(0, 0xFFFF), bump=st.integers(0, 255))
def test_reference_restore_adds_bump_modulo_65536(tag, bump):
    assert ExpTagEncap().reference_restore(exptag_header(tag), {"bump": bump}) == (
        "ok",
        restored(tag, bump),
    )


# ---- kernel ----------------------------------------------------------------
@pytest.mark.kernel
@pytest.mark.parametrize("bump", BUMPS)
@PROPERTY
@given(tag=st.integers(0, 0xFFFF), inner=inner_tcp_strategy())
def test_round_trip_through_a_router(harness_factory, bump, tag, inner):
    """ingress -> VNF (TTL - 1) -> egress: the exact frame, tag bumped."""
    harness = harness_factory("exptag", "tcpip", bump=bump)
    original = frame(ETH_P_EXPTAG, exptag_header(tag), inner)
    ingress, egress = harness.round_trip(original, vnf_ttl_decrement)
    assert ingress.expect.outcome == "cached"
    assert ingress.result.packet == original[:12] + b"\x08\x00" + inner
    assert egress is not None and egress.expect.outcome == "restored"
    routed = vnf_ttl_decrement(ingress.result.packet)
    assert egress.result.packet == original[:12] + b"\x88\xb5" + restored(tag, bump) + routed[14:]
    assert harness.proxy.cache() == {}, "a restored packet's entry must be deleted"


@pytest.mark.kernel
@pytest.mark.parametrize("tag, bump", [(0xFFFF, 1), (0xFF01, 255), (0xFFFF, 255)])
def test_bump_wraps_around(harness_factory, tag, bump):
    harness = harness_factory("exptag", "tcpip", bump=bump)
    _, egress = harness.round_trip(frame(ETH_P_EXPTAG, exptag_header(tag), tcp_ipv4()),
                                   vnf_ttl_decrement)
    assert egress.result.packet[14:18] == restored(tag, bump)


@pytest.mark.kernel
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize(
    "inner_proto, outcome",
    [
        (0x86DD, "unsupported_inner"),
        (0x0600, "unsupported_inner"),
        (0xFFFF, "unsupported_inner"),
        (0x05FF, "malformed"),
        (0x0000, "malformed"),
    ],
)
def test_inner_protocol(harness_factory, strict, inner_proto, outcome):
    harness = harness_factory("exptag", "tcpip", strict=strict)
    original = frame(ETH_P_EXPTAG, exptag_header(0x1234, inner_proto), tcp_ipv4())
    checked = harness.check_ingress(original)
    assert checked.expect.outcome == outcome
    assert checked.result.retval == (XDP_DROP if strict else XDP_PASS)
    if not strict:
        assert checked.result.packet == original, "a refused frame passes unmodified"
