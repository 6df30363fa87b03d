"""scapy layers for IOAM trace options (scapy 2.8 has none), written from the RFCs.

- :class:`HBHOptIOAM`: the IPv6 Hop-by-Hop option 0x31 (49) of RFC 9486 section 3:
  Option Type, Opt Data Len, Reserved, IOAM Option-Type, then the IOAM data. Its
  Option Type must start 4n-aligned (RFC 9486 3; Linux drops it otherwise): with
  scapy's autopad a PadN goes in front of it.
- :class:`IOAMPreallocatedTrace` (IOAM Option-Type 0) and :class:`IOAMIncrementalTrace`
  (1), RFC 9197 section 4.4: Namespace-ID 16 bits, NodeLen 5 (4-octet units, the
  Opaque State Snapshot not counted), Flags 4 (the most significant is O, overflow),
  RemainingLen 7 (4-octet units), IOAM-Trace-Type 24, Reserved 8; then the node data
  list. Pre-allocated: RemainingLen * 4 octets of unfilled space (``free``) come first,
  the filled node data after it, the newest first (a node writes the last free
  NodeLen words). Incremental: only filled node data, the newest first.
- :class:`IOAMNodeData`: one node's data, its fields present as the enclosing trace's
  IOAM-Trace-Type asks (bit 0 is the most significant of the 24 bits), RFC 9197 4.4.2.
- :class:`NSHIOAM`: the IOAM header after NSH (RFC 9452 3: NSH Next Protocol 0x06):
  IOAM-Type, IOAM HDR Len (the whole IOAM header, these four octets included, in
  4-octet units), Reserved, Next Protocol (NSH's values), then the same IOAM data.

Importing this module binds them: ``IPv6(raw)`` dissects a Hop-by-Hop header carrying
option 49, ``Ether(raw)`` an NSH frame with Next Protocol 6.

Builders: :func:`preallocated_trace`, :func:`incremental_trace`, :func:`ioam_hbh`,
:func:`nsh_ioam`, :func:`node_data`; decoders: :func:`find_trace`, :func:`decode_trace`,
:func:`decode_nodes`; sizes: :func:`node_len_words`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from scapy.contrib.mpls import MPLS
from scapy.contrib.nsh import NSH
from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    ConditionalField,
    Field,
    FieldLenField,
    FlagsField,
    IntField,
    PacketLenField,
    PacketListField,
    StrLenField,
    X3BytesField,
    XBitField,
    XByteField,
    XIntField,
    XLongField,
    XShortField,
)
from scapy.layers import inet6
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw, bind_layers

#: IPv6 option type of IOAM (RFC 9486 section 7: 0x31, "00 1 10001": skip if not
#: understood, may change en route)
IPV6_OPT_IOAM = 0x31
#: NSH Next Protocol of the IOAM header (RFC 9452 section 7)
NSH_NP_IOAM = 0x06
#: IOAM Option-Types (RFC 9197 section 7.2)
IOAM_PREALLOCATED, IOAM_INCREMENTAL, IOAM_POT, IOAM_E2E, IOAM_DEX = range(5)
IOAM_OPTION_TYPES = {IOAM_PREALLOCATED: "Pre-allocated Trace", IOAM_INCREMENTAL: "Incremental Trace",
                     IOAM_POT: "POT", IOAM_E2E: "E2E", IOAM_DEX: "DEX"}
NSH_NEXT_PROTOCOLS = {1: "IPv4", 2: "IPv6", 3: "Ethernet", 4: "NSH", 5: "MPLS", 6: "IOAM"}
#: Flags of the trace option header, least significant first: only O (overflow) is defined
TRACE_FLAGS = ["b3", "b2", "b1", "O"]

#: the IOAM-Trace-Type bits this module knows (RFC 9197 4.4.1): bit -> (4-octet words
#: of node data, field names in wire order). Bits 12-21 are undefined: a transit node
#: that sees one set adds 4 octets of 0xFFFFFFFF for it. Bit 22 (Opaque State Snapshot)
#: is variable and not counted in NodeLen; bit 23 is reserved.
TRACE_BITS: dict[int, tuple[int, tuple[str, ...]]] = {
    0: (1, ("hop_limit", "node_id")),
    1: (1, ("ingress_if_id", "egress_if_id")),
    2: (1, ("timestamp_seconds",)),
    3: (1, ("timestamp_fraction",)),
    4: (1, ("transit_delay",)),
    5: (1, ("namespace_data",)),
    6: (1, ("queue_depth",)),
    7: (1, ("checksum_complement",)),
    8: (2, ("wide_hop_limit", "wide_node_id")),
    9: (2, ("wide_ingress_if_id", "wide_egress_if_id")),
    10: (2, ("wide_namespace_data",)),
    11: (1, ("buffer_occupancy",)),
    **{b: (1, (f"undefined_{b}",)) for b in range(12, 22)},
    22: (0, ("opaque_len", "schema_id", "opaque_data")),
}
OPAQUE_BIT = 22

#: "not available" values (RFC 9197 4.4.2: all bits set for the field's size); for
#: Hop_Lim there is none (a node always knows it)
NOT_AVAILABLE = {
    "node_id": 0xFFFFFF, "ingress_if_id": 0xFFFF, "egress_if_id": 0xFFFF,
    "timestamp_seconds": 0xFFFFFFFF, "timestamp_fraction": 0xFFFFFFFF,
    "transit_delay": 0xFFFFFFFF, "namespace_data": 0xFFFFFFFF, "queue_depth": 0xFFFFFFFF,
    "checksum_complement": 0xFFFFFFFF, "wide_node_id": (1 << 56) - 1,
    "wide_ingress_if_id": 0xFFFFFFFF, "wide_egress_if_id": 0xFFFFFFFF,
    "wide_namespace_data": (1 << 64) - 1, "buffer_occupancy": 0xFFFFFFFF,
    **{f"undefined_{b}": 0xFFFFFFFF for b in range(12, 22)},
}
#: transit delay (RFC 9197 4.4.2.5): nanoseconds in 31 bits; the top bit set means overflow
TRANSIT_DELAY_OVERFLOW = 0x80000000


def trace_bit(trace_type: int, bit: int) -> bool:
    """Whether IOAM-Trace-Type bit ``bit`` (0: the most significant of 24) is set."""
    return bool(trace_type & (1 << (23 - bit)))


def trace_type_of(*bits: int) -> int:
    """The 24-bit IOAM-Trace-Type with these bits set."""
    out = 0
    for bit in bits:
        if not 0 <= bit <= 23:
            raise ValueError(f"IOAM-Trace-Type bit {bit} is not within 0..23")
        out |= 1 << (23 - bit)
    return out


def node_len_words(trace_type: int) -> int:
    """NodeLen for trace_type: the 4-octet words each node adds, the Opaque State
    Snapshot (bit 22) not counted."""
    return sum(TRACE_BITS[b][0] for b in TRACE_BITS if b != OPAQUE_BIT and trace_bit(trace_type, b))


def field_names(trace_type: int) -> list[str]:
    """The node data fields present for trace_type, in wire order."""
    return [name for b, (_, names) in TRACE_BITS.items() if trace_bit(trace_type, b) for name in names]


def _node_trace_type(pkt: Packet) -> int:
    """The IOAM-Trace-Type that shapes a node: its trace's (the parent, set by scapy on
    dissection and when a node is put into a trace), else the node's own hint."""
    parent = getattr(pkt, "parent", None)
    if parent is not None and getattr(parent, "trace_type", None) is not None:
        return parent.trace_type
    return pkt.getfieldval("trace_type_hint") or 0


class _HintField(Field):
    """A value kept with the packet that is neither built nor dissected (a node's
    IOAM-Trace-Type when it is not inside a trace)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, None)

    def addfield(self, pkt, s, val):
        return s

    def getfield(self, pkt, s):
        return s, None


def _present(bit: int):
    return lambda pkt: trace_bit(_node_trace_type(pkt), bit)


def _when(bit: int, *fields) -> list:
    return [ConditionalField(f, _present(bit)) for f in fields]


class IOAMNodeData(Packet):
    """The data one IOAM node writes (RFC 9197 4.4.2), as the trace's IOAM-Trace-Type says."""

    name = "IOAM node data"
    fields_desc = [
        _HintField("trace_type_hint"),
        *_when(0, ByteField("hop_limit", 0), X3BytesField("node_id", 0)),
        *_when(1, XShortField("ingress_if_id", 0), XShortField("egress_if_id", 0)),
        *_when(2, IntField("timestamp_seconds", 0)),
        *_when(3, IntField("timestamp_fraction", 0)),
        *_when(4, XIntField("transit_delay", 0)),
        *_when(5, XIntField("namespace_data", 0)),
        *_when(6, IntField("queue_depth", 0)),
        *_when(7, XIntField("checksum_complement", 0)),
        *_when(8, ByteField("wide_hop_limit", 0), XBitField("wide_node_id", 0, 56)),
        *_when(9, XIntField("wide_ingress_if_id", 0), XIntField("wide_egress_if_id", 0)),
        *_when(10, XLongField("wide_namespace_data", 0)),
        *_when(11, IntField("buffer_occupancy", 0)),
        *(f for b in range(12, 22) for f in _when(b, XIntField(f"undefined_{b}", 0xFFFFFFFF))),
        # Opaque State Snapshot: length of the opaque data in 4-octet units, Schema ID, data
        *_when(OPAQUE_BIT,
               FieldLenField("opaque_len", None, length_of="opaque_data", fmt="B",
                             adjust=lambda pkt, n: (n + 3) // 4),
               X3BytesField("schema_id", 0),
               StrLenField("opaque_data", b"", length_from=lambda pkt: (pkt.opaque_len or 0) * 4)),
    ]

    def extract_padding(self, s):
        return b"", s  # the next node follows


    def fields_dict(self) -> dict[str, Any]:
        """The fields present in this node, by name."""
        return {name: self.getfieldval(name) for name in field_names(_node_trace_type(self))}


class _FreeSpaceField(StrLenField):
    """The unfilled space of a pre-allocated trace: RemainingLen * 4 octets (zeros
    unless given)."""

    def i2m(self, pkt, x):
        if x is None:
            return b"\0" * ((pkt.remaining_len or 0) * 4)
        return super().i2m(pkt, x)


TRACE_HEADER = [
    XShortField("namespace_id", 0),
    BitField("node_len", None, 5),
    FlagsField("flags", 0, 4, TRACE_FLAGS),
    BitField("remaining_len", None, 7),
    XBitField("trace_type", 0, 24),
    XByteField("reserved", 0),
]


class _IOAMTrace(Packet):
    """The trace option header (RFC 9197 4.4.1) shared by both trace option types.
    NodeLen, when not given, follows the IOAM-Trace-Type."""

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        word = int.from_bytes(pkt[2:4], "big")
        if self.node_len is None:
            word = (word & 0x07FF) | (node_len_words(self.trace_type) << 11)
        if self.remaining_len is None:
            word = (word & 0xFF80) | (self._default_remaining() & 0x7F)
        return pkt[:2] + word.to_bytes(2, "big") + pkt[4:] + pay

    def _default_remaining(self) -> int:
        return 0

    def extract_padding(self, s):
        return s, b""  # the option's length bounds the trace: all of it is node data

    @property
    def overflow(self) -> bool:
        return bool(self.flags.O)


class IOAMPreallocatedTrace(_IOAMTrace):
    """IOAM Pre-allocated Trace Option (IOAM Option-Type 0). ``free``: the unfilled
    space (RemainingLen * 4 octets, zeros by default); ``nodes``: the filled node
    data, the newest first. RemainingLen defaults to len(free) / 4."""

    name = "IOAM Pre-allocated Trace"
    fields_desc = TRACE_HEADER + [
        _FreeSpaceField("free", None, length_from=lambda pkt: (pkt.remaining_len or 0) * 4),
        PacketListField("nodes", [], IOAMNodeData),
    ]

    def _default_remaining(self) -> int:
        return len(self.free) // 4 if self.free is not None else 0


class IOAMIncrementalTrace(_IOAMTrace):
    """IOAM Incremental Trace Option (IOAM Option-Type 1): the node data list holds
    only what nodes added (the newest first); RemainingLen is the room left."""

    name = "IOAM Incremental Trace"
    fields_desc = TRACE_HEADER + [PacketListField("nodes", [], IOAMNodeData)]


TRACE_CLASSES = {IOAM_PREALLOCATED: IOAMPreallocatedTrace, IOAM_INCREMENTAL: IOAMIncrementalTrace}
_TYPE_OF_CLASS = {cls: t for t, cls in TRACE_CLASSES.items()}


def _ioam_data(raw: bytes, _parent: Packet | None = None) -> Packet:
    """The IOAM data after an IOAM header: the class its IOAM Option-Type names."""
    ioam_type = getattr(_parent, "ioam_type", None)
    return TRACE_CLASSES.get(ioam_type, Raw)(raw, _parent=_parent)


class _IOAMCarrier(Packet):
    """What carries IOAM data: its IOAM Option-Type follows the data's class unless given."""

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.ioam_type is None:
            at = self._ioam_type_offset
            pkt = pkt[:at] + bytes([_TYPE_OF_CLASS.get(type(self.data), 0)]) + pkt[at + 1:]
        return pkt + pay


class HBHOptIOAM(_IOAMCarrier):
    """IPv6 Hop-by-Hop option IOAM (RFC 9486 section 3). Opt Data Len counts the
    Reserved and IOAM Option-Type octets and the IOAM data."""

    name = "IOAM option"
    fields_desc = [
        inet6._OTypeField("otype", IPV6_OPT_IOAM, inet6._hbhopts),
        FieldLenField("optlen", None, length_of="data", fmt="B", adjust=lambda pkt, n: n + 2),
        XByteField("reserved", 0),
        ByteEnumField("ioam_type", None, IOAM_OPTION_TYPES),
        PacketLenField("data", None, _ioam_data, length_from=lambda pkt: max(0, (pkt.optlen or 2) - 2)),
    ]
    _ioam_type_offset = 3

    def alignment_delta(self, curpos: int) -> int:
        """4n alignment (RFC 9486 3: the IOAM option is 4n-aligned)."""
        return -curpos % 4

    def extract_padding(self, p):
        return b"", p


class NSHIOAM(_IOAMCarrier):
    """The IOAM header after NSH (RFC 9452 section 3), then the IOAM data and the
    packet Next Protocol names."""

    name = "NSH IOAM"
    fields_desc = [
        ByteEnumField("ioam_type", None, IOAM_OPTION_TYPES),
        FieldLenField("hdr_len", None, length_of="data", fmt="B", adjust=lambda pkt, n: (n + 4 + 3) // 4),
        XByteField("reserved", 0),
        ByteEnumField("next_protocol", 1, NSH_NEXT_PROTOCOLS),
        PacketLenField("data", None, _ioam_data, length_from=lambda pkt: max(0, (pkt.hdr_len or 1) * 4 - 4)),
    ]
    _ioam_type_offset = 0


# ---- binding ------------------------------------------------------------------
inet6._hbhopts[IPV6_OPT_IOAM] = "IOAM"
inet6._hbhoptcls[IPV6_OPT_IOAM] = HBHOptIOAM
bind_layers(NSH, NSHIOAM, nextproto=NSH_NP_IOAM)
for _np, _cls in ((1, IP), (2, IPv6), (3, Ether), (4, NSH), (5, MPLS), (NSH_NP_IOAM, NSHIOAM)):
    bind_layers(NSHIOAM, _cls, next_protocol=_np)


# ---- builders ---------------------------------------------------------------------
def node_data(trace_type: int, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> IOAMNodeData:
    """One node's data for trace_type (fields not given: 0; undefined bits 12-21:
    0xFFFFFFFF). Put it into a trace (its nodes) or use it alone."""
    given = {**(fields or {}), **kwargs}
    unknown = set(given) - set(field_names(trace_type))
    if unknown:
        raise ValueError(f"node data fields {sorted(unknown)} are not in trace type 0x{trace_type:06x}")
    return IOAMNodeData(trace_type_hint=trace_type, **given)


def not_available(trace_type: int) -> dict[str, int]:
    """Every field of trace_type a node cannot provide, set to its "not available" value."""
    return {k: NOT_AVAILABLE[k] for k in field_names(trace_type) if k in NOT_AVAILABLE}


def _nodes(trace_type: int, nodes: Iterable[Any]) -> list[IOAMNodeData]:
    return [n if isinstance(n, IOAMNodeData) else node_data(trace_type, n) for n in nodes]


def preallocated_trace(namespace: int, trace_type: int, node_len_words: int | None = None,
                       nodes: Iterable[Any] = (), remaining: int = 0, flags: int = 0) -> IOAMPreallocatedTrace:
    """A pre-allocated trace: ``remaining`` free 4-octet words (zeros), then ``nodes``
    (dicts of field values or :class:`IOAMNodeData`, the newest first). NodeLen: from
    trace_type unless given."""
    return IOAMPreallocatedTrace(namespace_id=namespace, node_len=node_len_words, flags=flags,
                                 remaining_len=remaining, trace_type=trace_type,
                                 free=b"\0" * (4 * remaining), nodes=_nodes(trace_type, nodes))


def incremental_trace(namespace: int, trace_type: int, node_len_words: int | None = None,
                      nodes: Iterable[Any] = (), remaining: int = 0, flags: int = 0) -> IOAMIncrementalTrace:
    """An incremental trace: ``nodes`` (the newest first), room for ``remaining`` more words."""
    return IOAMIncrementalTrace(namespace_id=namespace, node_len=node_len_words, flags=flags,
                                remaining_len=remaining, trace_type=trace_type,
                                nodes=_nodes(trace_type, nodes))


def ioam_hbh(trace: Packet, nh: int = 43) -> IPv6ExtHdrHopByHop:
    """A Hop-by-Hop header carrying one IOAM option with ``trace``; scapy's autopad puts
    a PadN before it (4n alignment) and pads the header to 8n octets."""
    return IPv6ExtHdrHopByHop(nh=nh, options=[HBHOptIOAM(data=trace)])


def nsh_ioam(trace: Packet, next_protocol: int) -> NSHIOAM:
    """The RFC 9452 IOAM header carrying ``trace``, before a packet of NSH Next Protocol
    ``next_protocol``."""
    return NSHIOAM(next_protocol=next_protocol, data=trace)


# ---- decoders ---------------------------------------------------------------------
def find_trace(pkt: Packet) -> _IOAMTrace | None:
    """The first IOAM trace in pkt: in a Hop-by-Hop IOAM option or after NSH."""
    hbh = pkt.getlayer(IPv6ExtHdrHopByHop)
    if hbh is not None:
        for option in hbh.options:
            if isinstance(option, HBHOptIOAM) and isinstance(option.data, _IOAMTrace):
                return option.data
    carrier = pkt.getlayer(NSHIOAM)
    if carrier is not None and isinstance(carrier.data, _IOAMTrace):
        return carrier.data
    return None


def decode_nodes(trace: _IOAMTrace) -> list[dict[str, Any]]:
    """The filled node data of a trace, one dict per node, the newest first."""
    return [node.fields_dict() for node in trace.nodes]


def decode_trace(trace: _IOAMTrace) -> dict[str, Any]:
    """The trace header's fields and its nodes (:func:`decode_nodes`)."""
    return {
        "ioam_type": _TYPE_OF_CLASS.get(type(trace)), "namespace_id": trace.namespace_id,
        "node_len": trace.node_len, "overflow": trace.overflow, "flags": int(trace.flags),
        "remaining_len": trace.remaining_len, "trace_type": trace.trace_type,
        "nodes": decode_nodes(trace),
    }


__all__ = [
    "HBHOptIOAM", "IOAMIncrementalTrace", "IOAMNodeData", "IOAMPreallocatedTrace", "NSHIOAM",
    "IOAM_INCREMENTAL", "IOAM_PREALLOCATED", "IPV6_OPT_IOAM", "NOT_AVAILABLE", "NSH_NP_IOAM",
    "TRACE_BITS", "TRANSIT_DELAY_OVERFLOW", "decode_nodes", "decode_trace", "field_names",
    "find_trace", "incremental_trace", "ioam_hbh", "node_data", "node_len_words", "not_available",
    "nsh_ioam", "preallocated_trace", "trace_bit", "trace_type_of",
]
