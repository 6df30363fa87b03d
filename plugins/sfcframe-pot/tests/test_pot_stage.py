"""The pot stage's C against its Python reference in the real kernel
(BPF_PROG_TEST_RUN through sfcframe's test kit): any RND and CML (the full
64-bit range), any share, public value and LPC below 2^61 - 1, both profiles,
NSH (RFC 9452) and SRv6 Hop-by-Hop (RFC 9486) carriers, XDP and TC ingress;
and a proxy inside a Python path of nodes producing a CML that verifies."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfcframe_pot import option, profile
from sfcframe_pot.arith import P

pytestmark = pytest.mark.kernel

PROPERTY = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
SID = "fc00::a"
BUILDS = [
    pytest.param("nsh", "tcpip", {"max_ioam_bytes": 64}, id="nsh-tcpip"),
    pytest.param("nsh", "metadata", {"max_ioam_bytes": 64, "carrier": "mark"},
                 id="nsh-metadata"),
    pytest.param("nsh", "tcpip", {"max_ioam_bytes": 64, "ingress": "tc"}, id="nsh-tcpip-tc"),
    pytest.param("srv6", "tcpip", {"sid": SID, "max_ext_bytes": 64, "max_segments": 4,
                                   "max_tlv_bytes": 0}, id="srv6-tcpip"),
    pytest.param("srv6", "metadata", {"sid": SID, "max_ext_bytes": 64, "max_segments": 4,
                                      "max_tlv_bytes": 0, "ingress": "tc"}, id="srv6-metadata-tc"),
]

RESIDUE = st.one_of(st.integers(0, P - 1), st.sampled_from([0, 1, P - 1, (1 << 32) - 1]))
SETTINGS = st.fixed_dictionaries({
    "namespace": st.sampled_from([0, 0, 0x8FC0]),
    **{f"{name}_{k}": RESIDUE for name in ("share", "public", "lpc") for k in (0, 1)},
})


def embed(harness, body: bytes, kind: int = option.IOAM_POT) -> bytes:
    stage = harness.proxy.spec.stages[0]
    return harness.encap.carrier_embed(stage.carrier, harness.encap.example_header(
        harness.encap_values), kind, body, harness.encap_values)


def restored_pot(harness, egress) -> option.PotOption:
    stage = harness.proxy.spec.stages[0]
    restored = egress.result.packet[14:]
    at, length = harness.encap.carrier_find(stage.carrier, restored, option.IOAM_POT,
                                            harness.encap_values)
    return option.PotOption.parse(restored[at:at + length])


@pytest.mark.parametrize("encap, key, params", BUILDS)
@PROPERTY
@given(data=st.data())
def test_the_kernel_updates_cml_exactly_as_the_reference(harness_factory, encap, key, params,
                                                         data):
    """The test kit's oracle runs PotStage.reference_egress (sfcframe_pot.arith):
    the restored frame must equal it byte for byte, and the counter it names move."""
    from sfcframe.testkit.packets import inner_strategy, vnf_ttl_decrement

    harness = harness_factory(encap, key, stages=("pot",), **params)
    harness.set_stage_settings("pot", data.draw(SETTINGS, label="settings"))
    stage = harness.proxy.spec.stages[0]
    family = data.draw(st.sampled_from(harness.inner_ethertypes), label="family")
    header = data.draw(harness.encap.header_strategy(harness.encap_values, family), label="header")
    kind, body = data.draw(stage.plugin.body_strategy(stage.values), label="pot")
    header = harness.encap.carrier_embed(stage.carrier, header, kind, body, harness.encap_values)
    inner = data.draw(inner_strategy(family), label="inner")
    ingress, egress = harness.round_trip(harness.frame(header, inner), vnf_ttl_decrement)
    assert ingress.expect.outcome == "cached"
    assert egress is not None and egress.expect.outcome == "restored"


@pytest.mark.parametrize("encap, key, params", [BUILDS[0], BUILDS[3]])
@pytest.mark.parametrize("index", [0, 1])
def test_the_proxy_as_node_2_of_3_completes_a_proof(harness_factory, encap, key, params, index):
    from sfcframe.testkit.packets import tcp_ipv4

    prof = profile.generate(3, namespace=0x8FC0, index=index)
    node1, node2, node3 = prof.nodes
    harness = harness_factory(encap, key, stages=("pot",), **params)
    harness.set_stage_settings("pot", {k.split(".", 1)[1]: v
                                       for k, v in prof.settings(2).items()})
    flags = option.FLAG_PROFILE if index else 0
    for seq, rnd in enumerate([1, P - 1, P, (1 << 64) - 1, 0x0123456789ABCDEF]):
        sent = option.PotOption(0x8FC0, rnd, node1.update(0, rnd), flags)
        _, egress = harness.round_trip(harness.frame(embed(harness, sent.pack()),
                                                     tcp_ipv4(seq=seq)), lambda f: f)
        assert egress.expect.stage_counters == {"pot": "updated"}
        got = restored_pot(harness, egress)
        assert (got.rnd, got.namespace, got.flags) == (rnd, 0x8FC0, flags)
        assert got.cml == node2.update(sent.cml, rnd)
        assert prof.verifies(node3.update(got.cml, rnd), rnd)
        assert not prof.verifies(node3.update(sent.cml, rnd), rnd)  # without the proxy


@pytest.mark.parametrize("encap, key, params", [BUILDS[0], BUILDS[3]])
def test_every_case_moves_its_counter(harness_factory, encap, key, params):
    from sfcframe.testkit.packets import tcp_ipv4

    harness = harness_factory(encap, key, stages=("pot",), **params)
    pot = option.PotOption(0, 5, 6)
    cases = [  # (settings, carrier data, counter)
        ({}, pot.pack(), "no_profile"),  # lpc 0: not configured
        ({"lpc_0": 3}, pot.pack(), "updated"),
        ({"lpc_0": 3}, option.PotOption(0, 5, 6, option.FLAG_PROFILE).pack(), "no_profile"),
        ({"lpc_0": 3, "namespace": 9}, pot.pack(), "other_namespace"),
        ({"lpc_0": 3}, option.PotOption(0, 5, 6, 0, 1).pack(), "unknown_type"),
    ]
    for seq, (values, body, counter) in enumerate(cases):
        harness.set_stage_settings("pot", {"namespace": 0, "lpc_0": 0, **values})
        _, egress = harness.round_trip(harness.frame(embed(harness, body), tcp_ipv4(seq=seq)),
                                       lambda f: f)
        assert egress.expect.stage_counters == {"pot": counter}, counter
    # a trace instead of a POT option: nothing to update
    _, egress = harness.round_trip(harness.frame(embed(harness, bytes(8), kind=0),
                                                 tcp_ipv4(seq=99)), lambda f: f)
    assert egress.expect.stage_counters == {"pot": "no_pot"}


def test_the_rendered_c_holds_no_secret(tmp_path):
    """Settings live in the map: the C of a build is the same whatever the profile."""
    from sfcframe.composer import render
    from sfcframe.spec import resolve_spec

    text = render(resolve_spec("srv6", "tcpip", {"sid": SID, "max_ext_bytes": 64},
                               stages=["pot"])).combined()
    prof = profile.generate(2)
    for n in prof.nodes:
        for value in (n.share, n.public, n.lpc):
            assert str(value) not in text and f"{value:x}" not in text.lower()
    assert "pot_mulmod" in text and "stage_pot_settings" in text
