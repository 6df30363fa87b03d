"""The IOAM trace of the MPLS/NSH demo (``sfcframe demo --encap nsh --stage ioam``).

There is no kernel peer for IOAM over NSH (RFC 9452): the demo's own stamper
puts the trace behind the encapsulation and the demo's own checker reads it.
The SFF's stamper writes, behind the NSH header (Next Protocol 0x6), an IOAM
header (IOAM-Type 0 = pre-allocated trace, IOAM HDR Len, Reserved, Next
Protocol 0x1 IPv4) and a pre-allocated trace (RFC 9197 4.4): Namespace-ID
0x8FC0, NodeLen from the trace type, RemainingLen = all slots but one, and in
the last slot its **own node data** (node 1, the SFF: the same numbering as the
SRv6 testbed's, :func:`sfcframe.demo.srv6_ioam.node_ids`)::

    hop limit 63 (the NSH TTL it stamps) | node id 0x5FC001
    ingress / egress interface ids 0x101 / 0x102
    timestamps: not available (the stamper keeps no clock: its node data must be
        recomputable from the packet, so that the checker finds it unchanged)
    transit delay: h & 0x7FFFFFFF, the packet's per-packet value (a proxy that
        wrote the wrong slot or mixed two packets' traces is caught)
    namespace data 0xDA7A0001 (and the wide fields alike; queue depth, checksum
        complement and buffer occupancy not available)

The proxy's ``ioam`` stage (node 2, :mod:`sfcframe.demo.ioam_stage`) takes the
slot before it and lowers RemainingLen by NodeLen. What the checker expects of
it: hop limit 63 (the NSH TTL of the restored header: an SF proxy decrements
the Service Index, not the TTL, so it records what the stamper recorded),
node id 0x5FC002, ``in0`` / ``out0`` 0x201 / 0x202, namespace data 0xDA7A0002,
"not available" for what a proxy cannot know; and **by range** (the values
vary per packet): timestamp seconds within the second before the check (the
checker converts its monotonic clock with the same offset the stage uses),
the microseconds below 10^6, and the transit delay (the function's dwell time)
of 1 ns .. 1 s. A third slot stays free for a later node (``slots``, default 3).

This module is the plan (:class:`TracePlan`: what the templates render, in
``bpf_templates/_demo_ioam.j2``) and the Python reference of the bytes stamped
and expected (:meth:`TracePlan.ioam_header`), which the tests compare the BPF
programs with and dissect with ``sfcframe_ioam.scapy_layers``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from sfcframe.demo import srv6_ioam
from sfcframe.errors import UsageError

#: Namespace-ID (the SRv6 testbed's too)
NAMESPACE = srv6_ioam.IOAM_NAMESPACE
#: hop limit and node id, interface ids, timestamp seconds and fraction, transit delay,
#: namespace data (bits 0-5)
DEFAULT_TRACE_TYPE = srv6_ioam.DEFAULT_TRACE_TYPE
#: the SFF's slot, the VNF host's, one free for a later node
DEFAULT_SLOTS = 3
#: IOAM-Type (RFC 9197 7.2) of a pre-allocated trace; RFC 9452 NSH Next Protocols
IOAM_PREALLOCATED = 0
NP_IPV4 = 0x1
NP_IOAM = 0x6
#: the trace types the demo knows: bits 0-11 (bit 22's opaque snapshot is not written)
SUPPORTED_BITS = frozenset(range(12))
#: header bytes the core demo programs handle at most (DEMO_HDR_MAX)
DEMO_HDR_LIMIT = 252
#: the fields of the proxy's node data checked by range (4 octets each), in this order
RANGED = ("timestamp_seconds", "timestamp_fraction", "transit_delay")
#: the transit delay's range: a packet spends at least a nanosecond and less than a
#: second in the function; timestamp seconds: within this long before the check
MAX_DWELL_NS = 1_000_000_000
WINDOW_NS = 1_000_000_000
#: the checker's clock may trail the proxy's by this much (two offsets taken apart)
CLOCK_SLACK_NS = 1_000_000
FRACTION_MAX = 999_999


def _node(role: str, hop_limit: int) -> dict[str, int | None]:
    """A node's identities as the testbed gives them, "not available" elsewhere;
    timestamps and transit delay None (filled per packet or checked by range)."""
    ids = srv6_ioam.node_ids(role)
    ingress, egress = srv6_ioam.IFACES[role]
    na = srv6_ioam.NOT_AVAILABLE_32
    return {
        "hop_limit": hop_limit, "node_id": ids.node_id,
        "ingress_if_id": ids.if_ids[ingress][0], "egress_if_id": ids.if_ids[egress][0],
        "timestamp_seconds": None, "timestamp_fraction": None, "transit_delay": None,
        "namespace_data": ids.namespace_data, "queue_depth": na, "checksum_complement": na,
        "wide_hop_limit": hop_limit, "wide_node_id": ids.wide_node_id,
        "wide_ingress_if_id": ids.if_ids[ingress][1], "wide_egress_if_id": ids.if_ids[egress][1],
        "wide_namespace_data": ids.wide_namespace_data, "buffer_occupancy": na,
    }


@dataclass(frozen=True)
class TracePlan:
    """The trace of one demo run. ``proxy``: the VNF host's slot is filled by the
    proxy's stage after the proxy (else the trace arrives as stamped); ``hop_limit``:
    what both nodes write (the encapsulation's TTL as stamped)."""

    trace_type: int = DEFAULT_TRACE_TYPE
    slots: int = DEFAULT_SLOTS
    proxy: bool = True
    hop_limit: int = 63
    namespace: int = NAMESPACE

    def __post_init__(self) -> None:
        bits = {b for b in range(24) if srv6_ioam.bit_set(self.trace_type, b)}
        if not 0 < self.trace_type < 1 << 24 or bits - SUPPORTED_BITS:
            raise UsageError(f"IOAM trace type 0x{self.trace_type:06x}: the demo's trace knows bits "
                             "0-11 (bit 0 = 0x800000), and needs one of them")
        if self.slots < 2:
            raise UsageError("IOAM: at least 2 slots (the SFF's and the VNF host's)")
        if self.header_len > DEMO_HDR_LIMIT:
            raise UsageError(f"IOAM: {self.slots} slots of {self.node_words} words do not fit "
                             f"the demo's {DEMO_HDR_LIMIT} octets of header")

    # ---- sizes ----------------------------------------------------------
    @property
    def node_words(self) -> int:
        return srv6_ioam.node_len(self.trace_type)

    @property
    def node_octets(self) -> int:
        return 4 * self.node_words

    @property
    def trace_len(self) -> int:
        """Octets of the trace option data: its 8-octet header and every slot."""
        return 8 + self.slots * self.node_octets

    @property
    def header_len(self) -> int:
        """Octets of the RFC 9452 IOAM header with the trace (IOAM HDR Len * 4)."""
        return 4 + self.trace_len

    def slot_offset(self, k: int) -> int:
        """Offset in the trace data of the k-th writer's node data (k 0: the stamper,
        in the last slot)."""
        return 8 + (self.slots - 1 - k) * self.node_octets

    def remaining(self, after: bool) -> int:
        """RemainingLen (words) as stamped, or after the proxy."""
        writers = 2 if after and self.proxy else 1
        return (self.slots - writers) * self.node_words

    # ---- node data ------------------------------------------------------
    def stamper_values(self, h: int) -> dict[str, int]:
        # node 1's identities: the SRv6 testbed's first node after the SFF ("t1"); here
        # the SFF itself, interfaces 0x101 (from the sender) and 0x102 (toward the VNF)
        values = _node("t1", self.hop_limit)
        values.update(timestamp_seconds=srv6_ioam.NOT_AVAILABLE_32,
                      timestamp_fraction=srv6_ioam.NOT_AVAILABLE_32, transit_delay=h & 0x7FFFFFFF)
        return self._present(values)

    def proxy_values(self) -> dict[str, int | None]:
        """The proxy's node data as the checker expects it; None: checked by range."""
        return self._present(_node("vnf", self.hop_limit))

    def _present(self, values: dict) -> dict:
        offsets = srv6_ioam.field_offsets(self.trace_type)
        return {k: v for k, v in values.items() if k in offsets}

    def stamper_node(self, h: int) -> bytes:
        return srv6_ioam.pack_node(self.trace_type, self.stamper_values(h))[0]

    def proxy_node(self) -> bytes:
        """The proxy's expected node data, ranged fields zero."""
        return srv6_ioam.pack_node(self.trace_type, self.proxy_values())[0]

    def ranged(self) -> list[tuple[str, int]]:
        """(field, octet offset in the trace data) of every field of the proxy's node
        checked by range, in RANGED order."""
        offsets = srv6_ioam.field_offsets(self.trace_type)
        base = self.slot_offset(1)
        return [(name, base + offsets[name][0]) for name in RANGED if name in offsets]

    # ---- what the templates render --------------------------------------
    def words(self, which: str) -> list[dict[str, Any]]:
        """The node data words of ``stamper`` or ``proxy`` for the template: each
        ``{"kind": "const", "value"}``, ``{"kind": "h"}`` (h & 0x7FFFFFFF: the
        stamper's transit delay) or ``{"kind": "range", "name"}`` (the proxy's)."""
        offsets = srv6_ioam.field_offsets(self.trace_type)
        special = {}
        if which == "stamper":
            data = self.stamper_node(0)
            if "transit_delay" in offsets:
                special[offsets["transit_delay"][0]] = {"kind": "h"}
        else:
            data = self.proxy_node()
            for name in RANGED:
                if name in offsets:
                    special[offsets[name][0]] = {"kind": "range", "name": name}
        out = []
        for at in range(0, len(data), 4):
            out.append(special.get(at) or {"kind": "const",
                                           "value": int.from_bytes(data[at:at + 4], "big")})
        return out

    def template(self) -> dict[str, Any]:
        """What ``bpf_templates/_demo_ioam.j2`` sees as ``io``."""
        return {
            "trace_type": self.trace_type, "namespace": self.namespace, "slots": self.slots,
            "node_words": self.node_words, "trace_words": self.trace_len // 4,
            "header_len": self.header_len, "proxy": self.proxy,
            "remaining": {"stamped": self.remaining(False), "after": self.remaining(True)},
            "stamper_slot": self.slot_offset(0) // 4, "proxy_slot": self.slot_offset(1) // 4,
            "stamper": self.words("stamper"), "proxy_node": self.words("proxy"),
            "ranged": self.ranged() if self.proxy else [],
            "max_dwell_ns": MAX_DWELL_NS, "window_ns": WINDOW_NS, "slack_ns": CLOCK_SLACK_NS,
            "fraction_max": FRACTION_MAX,
        }

    def describe(self) -> str:
        return (f"IOAM trace type 0x{self.trace_type:06x}, namespace 0x{self.namespace:04x}, "
                f"{self.slots} slots of {self.node_words} words; VNF host's slot: "
                f"{'the proxy stage' if self.proxy else 'left free'}")

    # ---- the Python reference -------------------------------------------
    def trace(self, h: int, after: bool) -> bytes:
        """The trace option's data (RFC 9197 4.4) as stamped or as expected after the
        proxy (the proxy's ranged fields zero)."""
        head = struct.pack("!HHI", self.namespace, (self.node_words << 11) | self.remaining(after),
                           self.trace_type << 8)
        slots = [bytes(self.node_octets)] * self.slots
        slots[self.slots - 1] = self.stamper_node(h)
        if after and self.proxy:
            slots[self.slots - 2] = self.proxy_node()
        return head + b"".join(slots)

    def ioam_header(self, h: int, after: bool, next_protocol: int = NP_IPV4) -> bytes:
        """The RFC 9452 IOAM header with the trace."""
        return bytes([IOAM_PREALLOCATED, self.header_len // 4, 0, next_protocol]) + self.trace(h, after)

    def bounds(self, name: str, now_posix_ns: int) -> tuple[int, int]:
        """The range a ranged field must be in when checked at POSIX time now_posix_ns."""
        if name == "timestamp_seconds":
            return (now_posix_ns - WINDOW_NS) // 10**9, (now_posix_ns + CLOCK_SLACK_NS) // 10**9
        if name == "timestamp_fraction":
            return 0, FRACTION_MAX
        return 1, MAX_DWELL_NS - 1


def plan_of(cfg: Any, stage: bool, hop_limit: int = 63) -> TracePlan | None:
    """The trace of a demo run (None: no IOAM). ``stage``: the proxy runs the ioam
    stage. The VNF host's slot is expected filled per ``cfg.ioam_vnf``: ``auto`` when the
    stage runs, ``proxy`` always (without the stage: the control that fails), ``none``
    never."""
    if not (getattr(cfg, "ioam", False) or stage):
        return None
    vnf = getattr(cfg, "ioam_vnf", "auto")
    if vnf == "kernel":
        raise UsageError("--ioam-vnf kernel: no kernel writes IOAM over NSH (RFC 9452); "
                         "use auto, proxy or none")
    trace_type = getattr(cfg, "ioam_trace_type", None)
    with_proxy = getattr(cfg, "vnf", "forward") != "none"
    return TracePlan(trace_type=DEFAULT_TRACE_TYPE if trace_type is None else trace_type,
                     slots=getattr(cfg, "ioam_slots", None) or DEFAULT_SLOTS,
                     proxy=with_proxy and (vnf == "proxy" or (vnf == "auto" and stage)),
                     hop_limit=hop_limit)
