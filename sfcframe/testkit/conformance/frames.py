"""Frames and data for one build of the conformance kit: valid encapsulated frames,
plain packets, and the stages' carrier data and settings."""

from __future__ import annotations

from typing import Any

from sfcframe.testkit.harness import Harness
from sfcframe.testkit.packets import ETH_P_IP, ETH_P_IPV6, VNF_STEPS_IPV6, tcp_ipv4, tcp_ipv6


def family_of(inner: bytes) -> int:
    """The ethertype of an inner IP packet, from its version nibble."""
    return ETH_P_IPV6 if inner[0] >> 4 == 6 else ETH_P_IP


def keyed_inners(harness: Harness) -> list[bytes]:
    """One inner packet per family the build keys: IPv4/TCP with IP options, IPv6/TCP
    with a timestamp option behind a no-operation word; the key's own example
    (``KeyPlugin.example_inner``) where the key does not key TCP (rtp, esp, ...)."""
    out = []
    for family in harness.inner_ethertypes:
        inner = (tcp_ipv4(ip_option_words=2) if family == ETH_P_IP
                 else tcp_ipv6(tcp_option_words=1, timestamps=(0x01020304, 0x05060708)))
        if harness.key.reference_key(inner, family, harness.values)[0] != "ok":
            inner = harness.key.example_inner(harness.values, family)
        out.append(inner)
    return out


def inner_strategy(harness: Harness, family: int):
    """The key's hypothesis strategy of inner packets it keys (``KeyPlugin.inner_strategy``:
    IPv4/TCP or IPv6/TCP unless the key says otherwise)."""
    return harness.key.inner_strategy(harness.values, family)


def valid_frame(harness: Harness, inner: bytes | None = None) -> bytes:
    """An encapsulated frame around ``inner`` (default: the first keyed inner packet),
    the example header carrying each stage's simplest data."""
    inner = inner or keyed_inners(harness)[0]
    family = family_of(inner)
    header = harness.encap.example_header(harness.encap_values, family)
    return harness.frame(with_stage_data(harness, header, simplest_bodies(harness)), inner)


def plain_inner(harness: Harness) -> tuple[int, bytes]:
    """(ethertype, packet) of a plain packet the key covers."""
    inner = keyed_inners(harness)[0]
    return family_of(inner), inner


def non_tcp_inners() -> dict[str, bytes]:
    """IPv4 packets that are not TCP: {"udp": ..., "icmp": ...}."""
    from scapy.layers.inet import ICMP, IP, UDP

    return {
        "udp": bytes(IP(src="10.1.0.1", dst="10.2.0.1") / UDP(sport=1, dport=2) / (b"x" * 8)),
        "icmp": bytes(IP(src="10.1.0.1", dst="10.2.0.1") / ICMP(id=3, seq=4) / (b"y" * 8)),
    }


def vnf_names(harness: Harness, inner: bytes) -> list[str]:
    """The VNF steps of :data:`~sfcframe.testkit.packets.VNF_STEPS` a round trip of
    ``inner`` may take: those the key keeps its key through (``KeyPlugin.vnf_steps``:
    forwarding, a router, a length change, DSCP/ECN re-marking; NAT of IPv4 where the
    key survives it; a key over payload bytes leaves the length change out)."""
    steps = harness.key.vnf_steps(harness.values, inner)
    return [n for n in steps if family_of(inner) == ETH_P_IP or n in VNF_STEPS_IPV6]


# ---- stages ---------------------------------------------------------------------
def with_stage_data(harness: Harness, header: bytes,
                    bodies: dict[str, tuple[int, bytes] | None]) -> bytes:
    """``header`` carrying, for each stage with an entry in ``bodies``, its (kind, body)
    in the stage's carrier (None: no data for that stage)."""
    for st in harness.proxy.spec.stages:
        drawn = bodies.get(st.name)
        if drawn is not None:
            kind, body = drawn
            header = harness.encap.carrier_embed(st.carrier, header, kind, body,
                                                 harness.encap_values)
    return header


def carries(harness: Harness, stage, drawn: tuple[int, bytes]) -> bool:
    """Whether this build can carry ``stage``'s (kind, body) at all: ``carrier_embed``
    raises ValueError for data the build has no room for (an APN option in a
    Hop-by-Hop header when the SRv6 build caches none), which is no valid input for
    it. Tried on the build's example header."""
    kind, body = drawn
    header = harness.encap.example_header(harness.encap_values, ETH_P_IP)
    try:
        harness.encap.carrier_embed(stage.carrier, header, kind, body, harness.encap_values)
    except ValueError:
        return False
    return True


def simplest_bodies(harness: Harness) -> dict[str, tuple[int, bytes]]:
    """Each stage's simplest (kind, body) its strategy gives that the build can carry
    (hypothesis's ``find``: shrunk, so the same in every run)."""
    from hypothesis import find, settings

    quiet = settings(database=None, max_examples=200)
    return {st.name: find(st.plugin.body_strategy(st.values),
                          lambda drawn, st=st: carries(harness, st, drawn), settings=quiet)
            for st in harness.proxy.spec.stages}


def stage_bodies(harness: Harness):
    """Strategy of {stage: (kind, body) or None}: data for each stage that the build
    can carry, sometimes none."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        stage.name: st.none() | stage.plugin.body_strategy(stage.values).filter(
            lambda drawn, stage=stage: carries(harness, stage, drawn))
        for stage in harness.proxy.spec.stages})


def stage_settings(harness: Harness):
    """Strategy of {stage: {setting: value}}: every runtime setting of every stage at
    its default (often, so that settings which must match the packet's data, e.g. a
    namespace, still do), at either end of its declared range, or anywhere in it."""
    from hypothesis import strategies as st

    def one(param) -> Any:
        if param.kind == "int":
            return (st.just(param.default) | st.sampled_from([param.min, param.max])
                    | st.integers(param.min, param.max))
        if param.kind == "bool":
            return st.booleans()
        return st.just(param.default)

    return st.fixed_dictionaries({
        stage.name: st.fixed_dictionaries({p.name: one(p) for p in stage.settings})
        for stage in harness.proxy.spec.stages})
