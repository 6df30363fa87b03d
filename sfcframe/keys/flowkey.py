"""Common ground of the flow keys (``rtp``, ``esp``, ``icmp``, ``udp``, ``auto``): the
plugin class they share, which renders ``_flow.c.j2`` with the key's chain of
derivations, counts every derivation, and twins it in Python
(:mod:`sfcframe.keys.flow`).

A flow key names, per layer-4 protocol, the derivations tried in order
(:attr:`FlowKey.chains`); each derivation's C lives in a macro of its own key's
template (``derive`` in ``rtp.c.j2``, ...; the TCP one in ``tcpip.c.j2``) and its
Python twin in its key's module, so ``auto`` composes the others' code and
copies none. Every packet that reaches the key (ingress, plain frames included,
and egress) moves exactly one of the key's counters (``sfc_key_ingress``,
``sfc_key_egress``: :meth:`FlowKey.extra_counters`), named by
:meth:`FlowKey.counter_of`.
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.keys import flow
from sfcframe.plugin import KeyPlugin

INGRESS_COUNTERS = "sfc_key_ingress"
EGRESS_COUNTERS = "sfc_key_egress"
PROTO_NAMES = {flow.IPPROTO_TCP: "TCP", flow.IPPROTO_UDP: "UDP", flow.IPPROTO_ESP: "ESP",
               flow.IPPROTO_ICMP: "ICMP", flow.IPPROTO_ICMPV6: "ICMPV6"}


class FlowKey(KeyPlugin):
    """A key in the flow layout (60 bytes) made by a chain of derivations per protocol."""

    contract = 2
    template = ""
    #: {layer-4 protocol: derivation names, tried in this order}
    chains: Mapping[int, tuple[str, ...]] = {}
    #: counter names, in index order (each derivation reason maps to one)
    counters: tuple[str, ...] = ()

    # ---- what the key is made of --------------------------------------
    def derivations(self) -> dict[str, flow.Derivation]:
        """{derivation name: Python twin} of every name in :attr:`chains`."""
        raise NotImplementedError

    def counter_of(self, reason: str) -> str:
        """The counter a derivation reason moves (default: the counter of that name,
        ``other`` for the reasons this key has no counter for)."""
        return reason if reason in self.counters else "other"

    def inner_ethertypes(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        return (flow.ETH_P_IP, flow.ETH_P_IPV6)

    def template_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(values)
        out["key_size"] = flow.KEY_SIZE
        out["kinds"] = flow.KINDS
        out["reasons"] = flow.REASONS
        out["keyed"] = flow.KEYED
        out["outside"] = flow.OUTSIDE
        out["counters"] = self.counters
        out["counter_index"] = {r: self.counters.index(self.counter_of(r)) for r in flow.REASONS}
        out["chains"] = [(PROTO_NAMES[proto], names) for proto, names in sorted(self.chains.items())]
        out["uses"] = sorted({name for names in self.chains.values() for name in names})
        out["key_name"] = self.name or type(self).__name__
        return out

    def extra_counters(self, values: Mapping[str, Any],
                       core: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        """One per-CPU counter per derivation outcome, for each direction."""
        return {INGRESS_COUNTERS: self.counters, EGRESS_COUNTERS: self.counters}

    # ---- test oracle -----------------------------------------------------
    def reference_reason(self, l3: bytes, ethertype: int,
                         values: Mapping[str, Any]) -> tuple[str, bytes | None]:
        """(derivation reason, key bytes or None), as the C derives it."""
        chains = {proto: tuple(self.derivations()[n] for n in names)
                  for proto, names in self.chains.items()}
        return flow.derive(l3, ethertype, values, chains)

    def reference_counter(self, l3: bytes, ethertype: int, values: Mapping[str, Any]) -> str:
        """The key counter a packet moves in either direction."""
        return self.counter_of(self.reference_reason(l3, ethertype, values)[0])

    def reference_key(self, l3: bytes, ethertype: int,
                      values: Mapping[str, Any]) -> tuple[str, bytes | None]:
        reason, key = self.reference_reason(l3, ethertype, values)
        outcome = flow.key_outcome(reason)
        return outcome, key if outcome == "ok" else None

    def describe_key(self, key: bytes, values: Mapping[str, Any]) -> Mapping[str, Any]:
        import ipaddress

        saddr, daddr, sport, dport, body, label, window, doff_flags = struct_unpack(key)
        out: dict[str, Any] = {}
        for name, raw in (("saddr", saddr), ("daddr", daddr)):
            address = ipaddress.IPv6Address(raw)
            out[name] = str(address.ipv4_mapped or address)
        kinds = {v: k for k, v in flow.KINDS.items()}
        out["derivation"] = kinds.get(doff_flags, "tcpip")
        out.update(sport=sport, dport=dport, body=body.hex(), label=hex(label), window=window,
                   doff_flags=hex(doff_flags))
        return out

    # ---- test kit ----------------------------------------------------------
    def vnf_steps(self, values: Mapping[str, Any], inner: bytes) -> tuple[str, ...]:
        steps = super().vnf_steps(values, inner)
        if self.survives_nat:
            return steps
        return tuple(s for s in steps if s != "nat")


def struct_unpack(key: bytes) -> tuple:
    import struct

    return struct.unpack(flow.KEY_FORMAT, key)


# ---- inner packets for the test kit (scapy) ---------------------------------------
def ip_layer(ethertype: int, src: bytes, dst: bytes, ip_id: int = 1, fl: int = 0,
             ttl: int = 64, tos: int = 0):
    """A scapy IPv4 or IPv6 header (addresses as 4 or 16 raw bytes)."""
    import ipaddress

    if ethertype == flow.ETH_P_IPV6:
        from scapy.layers.inet6 import IPv6

        return IPv6(src=str(ipaddress.IPv6Address(src)), dst=str(ipaddress.IPv6Address(dst)),
                    fl=fl, hlim=ttl, tc=tos)
    from scapy.layers.inet import IP

    return IP(src=str(ipaddress.IPv4Address(src)), dst=str(ipaddress.IPv4Address(dst)),
              id=ip_id, ttl=ttl, tos=tos)


def ip_strategy(ethertype: int):
    """Hypothesis strategy of keyword arguments for :func:`ip_layer`."""
    from hypothesis import strategies as st

    size = 16 if ethertype == flow.ETH_P_IPV6 else 4
    return st.fixed_dictionaries({
        "ethertype": st.just(ethertype),
        "src": st.binary(min_size=size, max_size=size),
        "dst": st.binary(min_size=size, max_size=size),
        "ip_id": st.integers(0, 0xFFFF),
        "fl": st.integers(0, 0xFFFFF),
        "ttl": st.integers(2, 255),
        "tos": st.integers(0, 255),
    })


def example_ip(ethertype: int):
    """The IP header of the flow keys' example packets."""
    if ethertype == flow.ETH_P_IPV6:
        return ip_layer(ethertype, bytes.fromhex("fd000001" + "0" * 23 + "1"),
                        bytes.fromhex("fd000002" + "0" * 23 + "1"), fl=0x12345)
    return ip_layer(ethertype, bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1]), ip_id=7)


def udp_bytes(ip, sport: int, dport: int, payload: bytes, checksum: bool = True) -> bytes:
    """``ip`` / UDP / ``payload`` as bytes (lengths and checksum filled in; IPv4 may
    send checksum 0 with ``checksum=False``)."""
    from scapy.layers.inet import UDP

    udp = UDP(sport=sport, dport=dport) if checksum else UDP(sport=sport, dport=dport, chksum=0)
    return bytes(ip / udp / payload)
