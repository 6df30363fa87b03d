"""Core parameters ingress=tc and mode=static, and the change_head restore, on
the real kernel through BPF_PROG_TEST_RUN (the conformance kit's properties,
tests/test_conformance.py, run with ingress=tc as with xdp)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe.errors import ParamError
from sfcframe.outcomes import INGRESS
from sfcframe.plugin import ProgramSpec
from sfcframe.spec import resolve_spec
from sfcframe.testkit.packets import ETH_P_IP, ether, frame, tcp_ipv4
from sfcframe.testrun import TC_ACT_OK, TC_ACT_SHOT, run_tc

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ETH_P_MPLS = 0x8847


def _labels(*labels: int) -> bytes:
    return b"".join(
        ((label << 12) | (0x100 if i == len(labels) - 1 else 0) | 64).to_bytes(4, "big")
        for i, label in enumerate(labels)
    )


# ---- parameters (no kernel) --------------------------------------------------------
def test_core_parameters_and_programs():
    spec = resolve_spec("mpls", "tcpip", {})
    assert (spec.core["ingress"], spec.core["mode"], spec.core["static_header"]) == ("xdp", "cache", "")
    assert "ingress" not in spec.describe() and "mode" not in spec.describe()
    assert spec.programs[0] == ProgramSpec("sfc_ingress", "xdp", "xdp")
    tc = resolve_spec("mpls", "tcpip", {"ingress": "tc"})
    assert tc.programs == [
        ProgramSpec("sfc_ingress", "sched_cls", "tc-ingress"),
        ProgramSpec("sfc_egress", "sched_cls", "tc-egress"),
    ]
    assert "ingress=tc" in tc.describe()
    names = [o.name for o in tc.ingress_outcomes]
    assert names[len(INGRESS)] == "gso" and names[len(INGRESS) + 1:] == ["too_shallow"]
    with pytest.raises(ParamError, match="ingress"):
        resolve_spec("mpls", "tcpip", {"ingress": "bpf"})


def test_metadata_key_follows_the_tc_hook():
    spec = resolve_spec("mpls", "metadata", {"ingress": "tc"})
    assert spec.key_params["carrier"] == "mark"  # the default follows the hook
    assert [p.function for p in spec.programs] == ["sfc_ingress", "sfc_egress"]  # no sfc_carrier
    assert spec.key_extra_counters == {}
    with pytest.raises(ParamError, match="carrier=data_meta needs XDP ingress"):
        resolve_spec("mpls", "metadata", {"ingress": "tc", "carrier": "data_meta"})
    xdp = resolve_spec("mpls", "metadata", {"carrier": "mark"})
    assert [p.function for p in xdp.programs] == ["sfc_ingress", "sfc_egress", "sfc_carrier"]


def test_static_header_notations_and_errors():
    spec = resolve_spec("mpls", "tcpip", {"mode": "static", "static_header": "100, 200,300"})
    assert spec.static_bytes == _labels(100, 200, 300)
    assert spec.core["static_header"] == _labels(100, 200, 300).hex()
    assert spec.programs[0].function == "sfc_ingress" and len(spec.programs) == 2
    assert [o.name for o in spec.egress_outcomes] == [
        "ignored", "not_configured", "pushed", "too_big", "error"]
    assert "stripped" in [o.name for o in spec.ingress_outcomes]
    # capacity: a static proxy holds up to max_labels labels whatever pop says
    assert spec.header_capacity == 40
    hexed = resolve_spec("mpls", "tcpip", {"mode": "static", "static_header": "0x" + _labels(7).hex()})
    assert hexed.static_bytes == _labels(7)
    assert resolve_spec("mpls", "tcpip", {"mode": "static"}).static_bytes == b""
    bad = {
        "1048576": "outside 0..1048575",
        ",".join(["1"] * 11): "more than max_labels=10",
        "1,x": "is not a label",
        "0x000641": "whole number of 4-byte labels",
    }
    for text, message in bad.items():
        with pytest.raises(ParamError, match=message):
            resolve_spec("mpls", "tcpip", {"mode": "static", "static_header": text})
    with pytest.raises(ParamError, match="only applies to mode=static"):
        resolve_spec("mpls", "tcpip", {"static_header": "100"})
    nsh = resolve_spec("nsh", "tcpip", {"mode": "static", "static_header": "00 06 01 01 00 00 ff ff"})
    assert nsh.static_bytes == bytes.fromhex("00060101 0000ffff")
    with pytest.raises(ParamError, match="not hex"):
        resolve_spec("nsh", "tcpip", {"mode": "static", "static_header": "zz"})
    with pytest.raises(ParamError, match="exceeds the entry capacity"):
        resolve_spec("nsh", "tcpip", {"mode": "static", "static_header": "00" * 25})


# ---- ingress=tc ----------------------------------------------------------------------
@pytest.mark.kernel
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_tc_ingress_passes_gso_skbs_untouched(harness_factory, strict):
    """A GSO skb stands for several packets: one cached header cannot serve them all."""
    harness = harness_factory("mpls", "tcpip", strict=strict, ingress="tc")
    proxy = harness.proxy
    wire = frame(ETH_P_MPLS, _labels(1, 2, 3), tcp_ipv4(payload=b"z" * 200))
    before = proxy.counters()
    result = run_tc(proxy.module.fds["sfc_ingress"], wire, gso_size=100, gso_segs=2)
    assert result.retval == (TC_ACT_SHOT if strict else TC_ACT_OK)
    if not strict:
        assert result.packet == wire
    after = proxy.counters()
    moved = {n: after["ingress"][n] - before["ingress"][n] for n in proxy.ingress_names}
    assert {n: d for n, d in moved.items() if d} == {"gso": 1}
    assert proxy.cache() == {}
    # the same frame as a plain skb is cached and stripped
    assert harness.check_ingress(wire).expect.outcome == "cached"


@pytest.mark.kernel
def test_tc_ingress_strip_sets_the_inner_protocol(proxy_factory):
    """The stripped skb's protocol is the inner one (the stack delivers by it)."""
    proxy = proxy_factory("mpls", "metadata", ingress="tc")
    proxy.clear()
    wire = frame(ETH_P_MPLS, _labels(5, 6), tcp_ipv4())
    result = proxy.ingress(wire)
    assert result.retval == TC_ACT_OK
    assert result.packet == ether(ETH_P_IP) + tcp_ipv4()
    assert result.mark >> 31 == 1 and not result.mark & (1 << 30)  # ours, not plain
    plain = proxy.ingress(ether(ETH_P_IP) + tcp_ipv4())
    assert plain.mark & (1 << 30)  # flagged plain in the mark
    assert proxy.counters()["ingress"]["cached"] == 1 and proxy.counters()["ingress"]["plain"] == 1


# ---- mode=static ---------------------------------------------------------------------
STATIC_BUILDS = {
    "mpls": ({"static_header": "100,200,300"}, _labels(100, 200, 300)),
    "nsh": ({"max_md_bytes": 64, "static_header": "000601010000ffff" + "00" * 16},
            bytes.fromhex("000601010000ffff") + bytes(16)),
}


def _static(harness_factory, encap: str, hook: str, strict: bool = False):
    params, default = STATIC_BUILDS[encap]
    harness = harness_factory(encap, "tcpip", strict=strict, mode="static", ingress=hook, **params)
    return harness, default


def _scapy_layers(encap: str):
    import scapy.contrib.mpls  # noqa: F401
    import scapy.contrib.nsh  # noqa: F401
    from scapy.contrib.mpls import MPLS
    from scapy.contrib.nsh import NSH

    return {"mpls": MPLS, "nsh": NSH}[encap]


@pytest.mark.kernel
@pytest.mark.parametrize("hook", ["xdp", "tc"])
@pytest.mark.parametrize("encap", sorted(STATIC_BUILDS))
@PROPERTY
@given(data=st.data())
def test_static_strips_everything_and_pushes_the_configured_header(
    harness_factory, encap, hook, data
):
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    from sfcframe.testkit.packets import inner_tcp_strategy, vnf_ttl_decrement

    harness, default = _static(harness_factory, encap, hook)
    values = harness.proxy.spec.encap_params
    strategy = harness.proxy.spec.encap.plugin.header_strategy(values)
    header = data.draw(strategy, label="header")
    inner = data.draw(inner_tcp_strategy(), label="inner")
    configured = data.draw(st.one_of(st.none(), strategy), label="configured")
    if configured is not None:
        harness.proxy.set_static_header(configured)  # as `sfcframe set --static-header`
    pushed = default if configured is None else configured

    ingress = harness.check_ingress(frame(harness.proxy.spec.encap.plugin.ethertype, header, inner))
    assert ingress.expect.outcome == "stripped"
    stripped = Ether(ingress.result.packet)
    assert stripped.type == ETH_P_IP and bytes(stripped[IP]) == bytes(IP(inner))

    plain = vnf_ttl_decrement(ingress.result.packet)
    egress = harness.check_static_egress(plain, pushed)
    assert egress.expect.outcome == "pushed"
    out = Ether(egress.result.packet)
    layer = _scapy_layers(encap)
    assert out.type == harness.proxy.spec.encap.plugin.ethertype
    assert bytes(out.payload)[: len(pushed)] == pushed
    assert bytes(out[layer])[: len(pushed)] == pushed
    assert bytes(out[IP]) == plain[14:]
    if encap == "mpls":  # every configured label, in order, exactly as configured
        labels, hop = [], out[layer]
        while isinstance(hop, layer):
            labels.append(bytes(hop)[:4])
            hop = hop.payload
        assert b"".join(labels) == pushed
    assert harness.proxy.cache() == {}


@pytest.mark.kernel
@pytest.mark.parametrize("hook", ["xdp", "tc"])
@PROPERTY
@given(header=st.binary(min_size=1, max_size=80))
def test_static_push_of_any_length(harness_factory, hook, header):
    """Headers of any byte length (hex notation) are pushed exactly, also the
    last 1..3 bytes of a length that is not a whole number of words."""
    harness = harness_factory("nsh", "tcpip", mode="static", ingress=hook, max_md_bytes=128)
    harness.proxy.set_static_header(header)
    plain = ether(ETH_P_IP) + tcp_ipv4(payload=b"q" * 10)
    assert harness.check_static_egress(plain, header).expect.outcome == "pushed"


@pytest.mark.kernel
@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_static_set_header_without_reload_and_other_outcomes(harness_factory, hook):
    harness, default = _static(harness_factory, "mpls", hook)
    plain = ether(ETH_P_IP) + tcp_ipv4()
    assert harness.check_static_egress(plain, default).result.packet[14:26] == default
    harness.proxy.set_static_header(_labels(9))  # the next packet already gets it
    assert harness.check_static_egress(plain, _labels(9)).expect.outcome == "pushed"
    harness.proxy.set_static_header(b"")  # none: frames pass untouched
    none = harness.check_static_egress(plain, b"")
    assert none.expect.outcome == "not_configured" and none.result.packet == plain
    harness.proxy.set_static_header(None)  # back to the build's header
    assert harness.check_static_egress(plain, default).expect.outcome == "pushed"
    arp = ether(0x0806) + bytes(28)
    assert harness.check_static_egress(arp, default).expect.outcome == "ignored"
    # ingress: plain IP, foreign frames and bad stacks each counted once
    assert harness.check_ingress(plain).expect.outcome == "plain"
    assert harness.check_ingress(arp).expect.outcome == "ignored"
    assert harness.check_ingress(frame(ETH_P_MPLS, _labels(1, 2)[:6], b"")).expect.outcome == "malformed"
    deep = frame(ETH_P_MPLS, _labels(*range(11)), tcp_ipv4())
    assert harness.check_ingress(deep).expect.outcome == "too_deep"


@pytest.mark.kernel
def test_restore_of_a_gso_skb_takes_adjust_room(proxy_factory):
    """Egress restores GSO skbs with bpf_skb_adjust_room (never change_head).
    A test run's GSO skb has gso_type 0, which adjust_room refuses: the counted
    outcome is error, proving that path was taken; a non-GSO skb is restored."""
    proxy = proxy_factory("mpls", "tcpip", mode="static", static_header="100")
    proxy.clear()
    plain = ether(ETH_P_IP) + tcp_ipv4(payload=b"g" * 300)
    gso = run_tc(proxy.module.fds["sfc_egress"], plain, gso_size=100, gso_segs=3)
    assert gso.retval == TC_ACT_SHOT and proxy.counters()["egress"]["error"] == 1
    one = run_tc(proxy.module.fds["sfc_egress"], plain)
    assert one.retval == TC_ACT_OK and one.packet == plain[:12] + struct.pack(
        "!H", ETH_P_MPLS) + _labels(100) + plain[14:]


@pytest.mark.kernel
def test_build_check_of_tc_and_static_builds(kernel_ready):
    import subprocess
    import sys

    def build(*params: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "sfcframe", "build", "--encap", "mpls", "--key", "tcpip",
                "--check"]
        for p in params:
            argv += ["--param", p]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    tc = build("ingress=tc")
    assert tc.returncode == 0, tc.stderr
    assert "verifier OK: sfc_ingress (sched_cls, tc-ingress)" in tc.stdout
    static = build("mode=static", "static_header=100,200")
    assert static.returncode == 0, static.stderr
    assert "static_header=00064040000c8140" in static.stdout and "cache entry" not in static.stdout
    bad = build("mode=static", "static_header=100,2000000")
    assert bad.returncode == 2 and "outside 0..1048575" in bad.stderr


@pytest.mark.kernel
@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_third_party_encap_works_with_both_hooks(harness_factory, hook):
    """The exptag example plugin's parser only uses SFC_INGRESS_CTX and pointers."""
    from sfcframe.testkit.packets import vnf_ttl_decrement

    harness = harness_factory("exptag", "tcpip", ingress=hook, bump=3)
    plugin = harness.proxy.spec.encap.plugin
    wire = frame(plugin.ethertype, plugin.example_header(harness.proxy.spec.encap_params), tcp_ipv4())
    ingress, egress = harness.round_trip(wire, vnf_ttl_decrement)
    assert ingress.expect.outcome == "cached" and egress.expect.outcome == "restored"
