"""Python reference of the demo's per-packet value (``demo_hash`` in
``bpf_templates/_demo_common.j2``): what the SFF stamps and the checker
recomputes derive from it. Fields in host order."""

from __future__ import annotations

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
