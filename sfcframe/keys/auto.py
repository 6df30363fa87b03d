"""The auto key: one proxy and one cache for mixed traffic.

Each packet's key is made by the derivation its protocol calls for, in the
flow layout all of them share (:mod:`sfcframe.keys.flow`), so packets of
different protocols never take each other's keys:

=============================  ===============================================
inner packet                   derivation (counter)
=============================  ===============================================
TCP                            tcpip, as ``tcpip family=any`` (``tcpip``)
ESP (IP protocol 50)           esp (``esp``)
UDP to/from ``nat_t_port``     esp, if it is ESP (``esp``); IKE and keepalives
                               go on to the next
other UDP                      rtp, if it passes the RTP checks (``rtp``), else
                               udp (``udp``): RTCP, IKE, anything
ICMP/ICMPv6 echo               icmp (``icmp``)
anything else                  outside the key (``other``: other protocols,
                               other ICMP, fragments, extension headers)
=============================  ===============================================

The C of every derivation is its own key's (``tcpip.c.j2``, ``esp.c.j2``,
``rtp.c.j2``, ``udp.c.j2``, ``icmp.c.j2``), composed by ``_flow.c.j2`` into one
dispatch per protocol; the Python twins likewise. The counters
``sfc_key_ingress`` / ``sfc_key_egress`` count the packets each derivation
keyed. The key survives what each derivation survives: no NAT (tcpip, rtp,
udp, icmp do not), no change of a UDP payload (udp).
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.keys import flow
from sfcframe.keys.esp import PARAMS as ESP_PARAMS, derive_esp, esp_pair_strategy, esp_strategy
from sfcframe.keys.flowkey import FlowKey
from sfcframe.keys.icmp import derive_icmp, echo_pair_strategy, echo_strategy
from sfcframe.keys.rtp import (PARAMS as RTP_PARAMS, derive_rtp, rtp_pair_strategy, rtp_strategy,
                               validate_ports)
from sfcframe.keys.tcpip import TcpIpKey
from sfcframe.keys.udp import (PARAMS as UDP_PARAMS, derive_udp, udp_pair_strategy, udp_strategy,
                               validate_hash_bytes)

#: the counter of each derivation reason
COUNTER_OF = {"tcpip": "tcpip", "esp": "esp", "esp_in_udp": "esp", "rtp": "rtp",
              "echo": "icmp", "udp": "udp", "malformed": "malformed", "error": "error"}
_ANY = {"family": "any"}


def derive_tcp(inner: flow.Inner, values: Mapping[str, Any]) -> tuple[str, bytes | None]:
    """The tcpip key (family=any) on the packet whose IP step gave ``inner``."""
    from sfcframe.keys.tcpip import _tcp

    outcome, numbers, tail = _tcp(inner.l4, len(inner.l4))
    if outcome != "ok":
        return "malformed", None
    return "tcpip", inner.saddr + inner.daddr + numbers + inner.label.to_bytes(4, "big") + tail


class AutoKey(FlowKey):
    description = ("mixed traffic, one cache: the key derived per packet by protocol (TCP: "
                   "tcpip, ESP: esp, UDP: esp/rtp/udp, ICMP echo: icmp), counted per derivation")
    template = "auto.c.j2"
    params = RTP_PARAMS + ESP_PARAMS + UDP_PARAMS
    chains = {flow.IPPROTO_TCP: ("tcpip",), flow.IPPROTO_ESP: ("esp",),
              flow.IPPROTO_UDP: ("esp", "rtp", "udp"),
              flow.IPPROTO_ICMP: ("icmp",), flow.IPPROTO_ICMPV6: ("icmp",)}
    counters = ("tcpip", "esp", "rtp", "udp", "icmp", "other", "malformed", "error")

    def derivations(self):
        return {"tcpip": derive_tcp, "esp": derive_esp, "rtp": derive_rtp, "udp": derive_udp,
                "icmp": derive_icmp}

    def counter_of(self, reason: str) -> str:
        return COUNTER_OF.get(reason, "other")

    def validate(self, values: Mapping[str, Any]) -> None:
        validate_ports(values, self.name or "auto")
        validate_hash_bytes(values, self.name or "auto")

    def template_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {**super().template_values(values), "family": "any"}

    def example_inner(self, values, ethertype=flow.ETH_P_IP) -> bytes:
        return TcpIpKey().example_inner(_ANY, ethertype)

    def inner_strategy(self, values, ethertype=flow.ETH_P_IP):
        """Every protocol auto keys, alike often."""
        from hypothesis import strategies as st

        return st.one_of(TcpIpKey().inner_strategy(_ANY, ethertype), esp_strategy(values, ethertype),
                         rtp_strategy(values, ethertype), udp_strategy(values, ethertype),
                         echo_strategy(values, ethertype))

    def flow_pair_strategy(self, values, ethertype=flow.ETH_P_IP):
        """Two packets of one flow of any protocol auto keys."""
        from hypothesis import strategies as st

        return st.one_of(TcpIpKey().flow_pair_strategy(_ANY, ethertype),
                         esp_pair_strategy(values, ethertype), rtp_pair_strategy(values, ethertype),
                         udp_pair_strategy(values, ethertype), echo_pair_strategy(values, ethertype))

    def vnf_steps(self, values, inner: bytes) -> tuple[str, ...]:
        steps = super().vnf_steps(values, inner)
        ethertype = flow.ETH_P_IPV6 if inner[0] >> 4 == 6 else flow.ETH_P_IP
        if self.reference_counter(inner, ethertype, values) == "udp":
            steps = tuple(s for s in steps if s != "trim")
        return steps
