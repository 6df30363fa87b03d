"""Python reference of the demo's per-packet value (``demo_hash`` in
``bpf_templates/_demo_hash.j2``, and the SRv6 testbed's ``srv6_hash4`` /
``srv6_hash6`` in ``demo_srv6_parse.j2``): what the SFF stamps and the checker
recomputes derive from it. Fields in host order."""

from __future__ import annotations

from sfcframe.demo.srv6_plan import words

M32 = 0xFFFFFFFF


def _mix(x: int) -> int:
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def packet_hash(ip_id: int, seq: int, ack: int, chain: int) -> int:
    h = _mix(seq ^ ((chain * 0x9E3779B9) & M32))
    h = _mix(h ^ ack)
    return _mix(h ^ ip_id)


def _fold(h: int, *values: int) -> int:
    for v in values:
        h = _mix(h ^ v)
    return h


def srv6_hash4(ip_id: int, seq: int, ack: int, saddr: str, daddr: str, sport: int, dport: int,
               chain: int = 1, flow: bool = True) -> int:
    """``srv6_hash4`` of ``bpf_templates/demo_srv6_parse.j2``: packet_hash, then the
    addresses and the ports (source port in the upper half) unless ``flow`` is off
    (a NAT VNF rewrites them)."""
    h = packet_hash(ip_id, seq, ack, chain)
    if not flow:
        return h
    return _fold(h, *words(saddr), *words(daddr), (sport << 16) | dport)


def srv6_hash6(seq: int, ack: int, saddr: str, daddr: str, sport: int, dport: int,
               chain: int = 1, flow: bool = True) -> int:
    """``srv6_hash6``: sequence and acknowledgement numbers, the eight address words,
    the ports (the last two unless ``flow`` is off)."""
    h = _mix(_mix(seq ^ ((chain * 0x9E3779B9) & M32)) ^ ack)
    if not flow:
        return h
    return _fold(h, *words(saddr), *words(daddr), (sport << 16) | dport)


def srv6_tag(h: int) -> int:
    """The SRH Tag the SFF's stamper writes for value h."""
    return h & 0xFFFF


def srv6_flow_label(h: int) -> int:
    """The outer flow label the stamper writes for value h."""
    return h >> 12
