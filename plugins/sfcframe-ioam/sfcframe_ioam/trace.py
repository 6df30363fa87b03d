"""IOAM trace options (RFC 9197 section 4.4) as the proxy fills them, in Python.

This is the reference the stage's C (``ioam.c.j2``) is tested against, byte
for byte; the fields that depend on the clock are returned as ranges.

A trace option's data (what the carrier hands over: RFC 9486's option 49
after its Reserved and IOAM Option-Type bytes, or RFC 9452's IOAM header
after its 4 bytes)::

    Namespace-ID (16) | NodeLen (5) | Flags (4) | RemainingLen (7)
    IOAM-Trace-Type (24) | Reserved (8)
    node data list: RemainingLen words of room, then the data of earlier nodes

Pre-allocated (IOAM Option-Type 0): a node writes its words at word
``RemainingLen - words`` of the list and lowers RemainingLen by them; if
RemainingLen < words it sets the Overflow flag and writes nothing.
Incremental (Option-Type 1): a node inserts its words at the front of the list
(the option grows); RemainingLen says how many words may still be added; too
few: the Overflow flag, nothing inserted. A node's words are NodeLen, plus one
when the trace type has bit 22: NodeLen does not count the Opaque State
Snapshot (RFC 9197 4.4.1), whose 4-octet header (length 0, Schema ID 0xFFFFFF:
no snapshot) this node adds after its other fields, as Linux does.

The node data of this node, in trace-type bit order (bit 0 is the most
significant bit of IOAM-Trace-Type); what the proxy cannot provide keeps the
RFC's "not available" value, all ones (the opaque state snapshot: length 0,
schema 0xFFFFFF):

=====  =====  ==================================================================
bit    bytes  value
=====  =====  ==================================================================
0      4      hop limit of the restored header (carrier) | node_id (24 bits)
1      4      ingress_if (16) | egress_if (16)
2      4      timestamp seconds (POSIX, as Linux writes it; n/a without clock)
3      4      timestamp subseconds, microseconds (POSIX; n/a without clock)
4      4      transit delay through the function, ns (egress - ingress time);
              at or above 2^31 the most significant bit is set and the rest all ones
5      4      namespace_data
6      4      queue depth: n/a
7      4      checksum complement: n/a
8      8      hop limit | node_id_wide (56 bits)
9      8      ingress_if_wide (32) | egress_if_wide (32)
10     8      namespace_data_wide
11     4      buffer occupancy: n/a
12-21  4 each undefined: n/a
22     4      opaque state snapshot: length 0, schema ID 0xFFFFFF
23     -      reserved: nothing
=====  =====  ==================================================================

The node data is laid out field by field as long as it fits NodeLen words;
the rest of the slot stays all ones.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

PREALLOCATED = 0
INCREMENTAL = 1
TRACE_HDR_LEN = 8
FLAG_OVERFLOW = 0x8  # the most significant of the 4 flag bits
NOT_AVAILABLE = 0xFF

#: bytes of each trace-type bit's field (bit 23 reserved: none)
FIELD_BYTES = {**{b: 4 for b in range(0, 8)}, 8: 8, 9: 8, 10: 8, 11: 4,
               **{b: 4 for b in range(12, 22)}, 22: 4}
DELAY_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class TraceHeader:
    namespace: int
    node_len: int  # words
    flags: int
    remaining: int  # words
    trace_type: int

    @classmethod
    def parse(cls, body: bytes) -> "TraceHeader":
        ns, mid, ttype = struct.unpack_from("!HHI", body)
        return cls(ns, mid >> 11, (mid >> 7) & 0xF, mid & 0x7F, ttype >> 8)

    def pack(self) -> bytes:
        mid = (self.node_len << 11) | (self.flags << 7) | self.remaining
        return struct.pack("!HHI", self.namespace, mid, self.trace_type << 8)


def has_bit(trace_type: int, bit: int) -> bool:
    return bool(trace_type & (1 << (23 - bit)))


def node_words(node_len: int, trace_type: int) -> int:
    """The words one node adds: NodeLen, and the Opaque State Snapshot's header word
    (bit 22), which NodeLen does not count."""
    return node_len + (1 if has_bit(trace_type, 22) else 0)


@dataclass(frozen=True)
class Span:
    """A field the oracle knows only as a range: ``size`` bytes at ``offset`` of
    the node data, big-endian, within lo..hi."""

    offset: int
    size: int
    lo: int
    hi: int


@dataclass
class NodeData:
    data: bytes
    spans: list[Span] = field(default_factory=list)


def _timestamp_span(at: int, bit: int, now: tuple[int, int], offset: int) -> Span:
    """The seconds (bit 2) or microseconds (bit 3) field: POSIX time as the C computes
    it, the monotonic clock plus the offset in 64 bits (wrapping), seconds kept to
    their low 32 bits."""
    lo, hi = (now[0] + offset) % 2**64, (now[1] + offset) % 2**64
    if hi < lo:  # the 64-bit sum wrapped during the run
        return Span(at, 4, 0, 0xFFFFFFFF if bit == 2 else 999_999)
    if bit == 2:
        if lo // 10**9 >> 32 != hi // 10**9 >> 32:  # the 32-bit seconds wrapped
            return Span(at, 4, 0, 0xFFFFFFFF)
        return Span(at, 4, lo // 10**9 & 0xFFFFFFFF, hi // 10**9 & 0xFFFFFFFF)
    if lo // 10**9 == hi // 10**9:
        return Span(at, 4, lo % 10**9 // 1000, hi % 10**9 // 1000)
    return Span(at, 4, 0, 999_999)  # the second turned during the run


def node_data(trace_type: int, node_len: int, hop_limit: int, settings: dict[str, int],
              ingress_ns: int, now: tuple[int, int]) -> NodeData:
    """This node's data for ``trace_type`` in ``node_len`` words. ``now`` bounds the
    monotonic clock (ns) at the egress run; ``ingress_ns`` is the ingress time the
    entry recorded (0: none); ``settings['clock_offset_ns']`` turns monotonic into
    POSIX time (0: no clock, timestamps not available)."""
    out = bytearray([NOT_AVAILABLE] * (node_len * 4))
    spans: list[Span] = []
    at = 0
    offset = settings.get("clock_offset_ns", 0)
    for bit in range(0, 23):
        if not has_bit(trace_type, bit):
            continue
        size = FIELD_BYTES[bit]
        if at + size > len(out):
            break
        value: int | None = None
        if bit == 0:
            value = (hop_limit & 0xFF) << 24 | (settings["node_id"] & 0xFFFFFF)
        elif bit == 1:
            value = (settings["ingress_if"] & 0xFFFF) << 16 | (settings["egress_if"] & 0xFFFF)
        elif bit in (2, 3) and offset:
            spans.append(_timestamp_span(at, bit, now, offset))
        elif bit == 4 and ingress_ns:
            lo, hi = now[0] - ingress_ns, now[1] - ingress_ns
            spans.append(Span(at, 4, max(lo, 0), hi) if hi <= DELAY_MAX else
                         Span(at, 4, 0, 0xFFFFFFFF))
        elif bit == 5:
            value = settings["namespace_data"] & 0xFFFFFFFF
        elif bit == 8:
            value = (hop_limit & 0xFF) << 56 | (settings["node_id_wide"] & ((1 << 56) - 1))
        elif bit == 9:
            value = ((settings["ingress_if_wide"] & 0xFFFFFFFF) << 32
                     | (settings["egress_if_wide"] & 0xFFFFFFFF))
        elif bit == 10:
            value = settings["namespace_data_wide"] & ((1 << 64) - 1)
        elif bit == 22:
            value = 0x00FFFFFF  # opaque state snapshot: none (length 0)
        if value is not None:
            out[at:at + size] = value.to_bytes(size, "big")
        at += size
    return NodeData(bytes(out), spans)


@dataclass(frozen=True)
class Filled:
    """The trace option's data after this node, and the clock-dependent spans in it."""

    outcome: str  # "filled" | "overflow" | "other_namespace" | "malformed"
    body: bytes
    spans: tuple[Span, ...] = ()


def fill(kind: int, body: bytes, hop_limit: int, settings: dict[str, int], ingress_ns: int,
         now: tuple[int, int], room: int) -> Filled:
    """This node's turn on a trace option ``body`` of IOAM Option-Type ``kind``.
    ``room``: bytes the carrier may still grow by (incremental), else 0."""
    if len(body) < TRACE_HDR_LEN:
        return Filled("malformed", body)
    hdr = TraceHeader.parse(body)
    if hdr.namespace != settings["namespace"]:
        return Filled("other_namespace", body)
    words = node_words(hdr.node_len, hdr.trace_type)
    if kind == PREALLOCATED and TRACE_HDR_LEN + hdr.remaining * 4 > len(body):
        return Filled("malformed", body)
    if hdr.remaining < words or words == 0 or (kind == INCREMENTAL and words * 4 > room):
        over = TraceHeader(hdr.namespace, hdr.node_len, hdr.flags | FLAG_OVERFLOW, hdr.remaining,
                           hdr.trace_type)
        return Filled("overflow", over.pack() + body[TRACE_HDR_LEN:])
    node = node_data(hdr.trace_type, words, hop_limit, settings, ingress_ns, now)
    after = TraceHeader(hdr.namespace, hdr.node_len, hdr.flags, hdr.remaining - words, hdr.trace_type)
    if kind == PREALLOCATED:
        at = TRACE_HDR_LEN + (hdr.remaining - words) * 4
        new = after.pack() + body[TRACE_HDR_LEN:at] + node.data + body[at + words * 4:]
    else:
        at = TRACE_HDR_LEN
        new = after.pack() + node.data + body[TRACE_HDR_LEN:]
    spans = tuple(Span(at + s.offset, s.size, s.lo, s.hi) for s in node.spans)
    return Filled("filled", new, spans)


def preallocated(namespace: int, trace_type: int, node_len: int, slots: int,
                 filled: list[bytes] = (), flags: int = 0) -> bytes:
    """A pre-allocated trace option's data: room for ``slots`` nodes of ``node_len``
    words, the last ``len(filled)`` of them written by earlier nodes (in list order)."""
    remaining = (slots - len(filled)) * node_len
    hdr = TraceHeader(namespace, node_len, flags, remaining, trace_type)
    room = bytes(remaining * 4)
    return hdr.pack() + room + b"".join(filled)


def incremental(namespace: int, trace_type: int, node_len: int, room_words: int,
                filled: list[bytes] = (), flags: int = 0) -> bytes:
    """An incremental trace option's data: the nodes so far, ``room_words`` more allowed."""
    hdr = TraceHeader(namespace, node_len, flags, room_words, trace_type)
    return hdr.pack() + b"".join(filled)
