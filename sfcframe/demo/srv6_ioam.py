"""IOAM on the SRv6 kernel-peer testbed (``sfcframe demo --encap srv6 --ioam``).

The kernel fills pre-allocated IOAM trace node data (RFC 9197) carried in an
IPv6 Hop-by-Hop option 49 (RFC 9486) as a transit or receiving node, but cannot
insert a trace here (no ``encap ioam6``): the SFF's stamper inserts the
Hop-by-Hop header after the kernel's H.Encaps, and kernel IOAM nodes around the
VNF host fill their node data::

    snd ── sff ── t1 ── vnf ── t2 ── dec ── rcv
           H.Encaps  IOAM  End | proxy  IOAM  checker, then End.DX4/End.DT6 (and IOAM)
           + stamper (HBH with the trace inserted)

What this module holds (the IOAM part of the plan, and the Python reference of
what the stamper inserts and of every decision the checker's IOAM part makes):

- :class:`IoamOptions`: trace type, Namespace-ID, pre-allocated slots, who fills
  the VNF host's slot and what is expected there;
- the nodes' IOAM identities (:func:`node_ids`): node ids, interface ids,
  namespace data, each in short and wide form;
- :func:`trace_hbh`: the Hop-by-Hop header the stamper inserts (PadN, the IOAM
  option 4n-aligned, the trace header, the empty node data, padding to 8n);
- :func:`kernel_node`: the node data a Linux IOAM node writes (what the kernel's
  ``__ioam6_fill_trace_data`` was seen to write on this machine);
- :class:`IoamCheck` (:func:`check_plan`): what the checker compares, and
  :func:`reference_check` / :func:`vnf_slot`: its decisions in Python.

Node data layout (RFC 9197 4.4.2), the testbed's subset: IOAM-Trace-Type bits
0-11 and 22 (bit 0 is the most significant of the 24). Bits 12-21 are undefined
and 23 reserved: not used here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Mapping

from sfcframe.errors import UsageError

#: the IPv6 option type of IOAM (RFC 9486) and its IOAM Option-Type (RFC 9197)
IPV6_OPT_IOAM = 0x31
IOAM_PREALLOCATED = 0
#: Namespace-ID the testbed uses (0x8000-0xFFFF: private use, RFC 9197 7.7)
IOAM_NAMESPACE = 0x8FC0
#: hop limit and node id, interface ids, timestamp seconds and fraction, transit
#: delay, namespace data: bits 0-5
DEFAULT_TRACE_TYPE = 0xFC0000
#: pre-allocated node slots: t1, the VNF host, t2 and the decapsulating node
DEFAULT_SLOTS = 4
#: the Hop-by-Hop header the stamper inserts is at most this long (the checker's sample too)
MAX_HBH = 256
#: at most this many 4-octet words of node data per node (bits 0-11: 15, bit 22: 1)
MAX_NODE_WORDS = 16
NOT_AVAILABLE_32 = 0xFFFFFFFF
#: transit delay (RFC 9197 4.4.2.5): nanoseconds below 2^31, the top bit flags overflow
DELAY_OVERFLOW = 0x80000000

#: node data fields of the testbed's trace types: (bit, field, octets), in wire order
FIELDS: tuple[tuple[int, str, int], ...] = (
    (0, "hop_limit", 1), (0, "node_id", 3),
    (1, "ingress_if_id", 2), (1, "egress_if_id", 2),
    (2, "timestamp_seconds", 4), (3, "timestamp_fraction", 4),
    (4, "transit_delay", 4), (5, "namespace_data", 4), (6, "queue_depth", 4),
    (7, "checksum_complement", 4),
    (8, "wide_hop_limit", 1), (8, "wide_node_id", 7),
    (9, "wide_ingress_if_id", 4), (9, "wide_egress_if_id", 4),
    (10, "wide_namespace_data", 8), (11, "buffer_occupancy", 4),
    # Opaque State Snapshot: not counted in NodeLen; without a schema the kernel
    # writes length 0 and Schema ID 0xFFFFFF
    (22, "opaque_len", 1), (22, "schema_id", 3),
)
OPAQUE_BIT = 22
SUPPORTED_BITS = frozenset(b for b, _, _ in FIELDS)

#: the testbed's kernel IOAM nodes in path order, and their numbers (ids derive from them)
IOAM_ROLES = ("t1", "vnf", "t2", "dec")
#: the nodes between the SFF and the decapsulating node, in path order
MIDDLE = ("t1", "vnf", "t2")
NUMBER = {"t1": 1, "vnf": 2, "t2": 3, "dec": 4}
#: each IOAM node's interface from the SFF's side (ingress of the traced packets)
#: and toward the receiver
IFACES = {"t1": ("eth0", "eth1"), "vnf": ("in0", "out0"), "t2": ("eth0", "eth1"),
          "dec": ("eth0", "to-rcv")}
#: who fills the VNF host's slot
VNF_FILLERS = ("auto", "kernel", "proxy", "none")


def bit_set(trace_type: int, bit: int) -> bool:
    return bool(trace_type & (1 << (23 - bit)))


def node_len(trace_type: int) -> int:
    """NodeLen: 4-octet words per node, the Opaque State Snapshot not counted."""
    return sum(size for bit, _, size in FIELDS if bit != OPAQUE_BIT and bit_set(trace_type, bit)) // 4


def node_words(trace_type: int) -> int:
    """Words a node adds: NodeLen, plus the snapshot's header word (no schema) for bit 22."""
    return node_len(trace_type) + (1 if bit_set(trace_type, OPAQUE_BIT) else 0)


def field_offsets(trace_type: int) -> dict[str, tuple[int, int]]:
    """field -> (octet offset in the node data, octets), for the fields of trace_type."""
    out, off = {}, 0
    for bit, name, size in FIELDS:
        if bit_set(trace_type, bit):
            out[name] = (off, size)
            off += size
    return out


def pack_node(trace_type: int, values: Mapping[str, int | None]) -> tuple[bytes, bytes]:
    """(node data, mask) for trace_type: every field of ``values`` that is not None is
    written and masked in; other fields are zero and not masked."""
    offsets = field_offsets(trace_type)
    unknown = set(values) - set(offsets)
    if unknown:
        raise ValueError(f"fields {sorted(unknown)} are not in trace type 0x{trace_type:06x}")
    data, mask = bytearray(4 * node_words(trace_type)), bytearray(4 * node_words(trace_type))
    for name, value in values.items():
        if value is None:
            continue
        off, size = offsets[name]
        data[off:off + size] = value.to_bytes(size, "big")
        mask[off:off + size] = b"\xff" * size
    return bytes(data), bytes(mask)


def unpack_node(trace_type: int, data: bytes) -> dict[str, int]:
    """The fields of one node's data."""
    return {name: int.from_bytes(data[off:off + size], "big")
            for name, (off, size) in field_offsets(trace_type).items()}


# ---- the nodes' IOAM identities -------------------------------------------------------
@dataclass(frozen=True)
class NodeIds:
    """What one node's IOAM configuration is (``ip ioam namespace add``, sysctls)."""

    role: str
    node_id: int  # net.ipv6.ioam6_id (24 bits)
    wide_node_id: int  # net.ipv6.ioam6_id_wide (56 bits)
    namespace_data: int  # ip ioam namespace add NS data (32 bits)
    wide_namespace_data: int  # ... wide (64 bits)
    #: interface -> (net.ipv6.conf.IF.ioam6_id (16 bits), ioam6_id_wide (32 bits))
    if_ids: dict[str, tuple[int, int]] = field(default_factory=dict)


def node_ids(role: str) -> NodeIds:
    """Node k (t1 1, vnf 2, t2 3, dec 4): node id 0x5FC00k, interface ids 0x0k01 (from
    the SFF's side) and 0x0k02, namespace data 0xDA7A000k; the wide ones alike."""
    k = NUMBER[role]
    ingress, egress = IFACES[role]
    return NodeIds(
        role=role, node_id=0x5FC000 | k, wide_node_id=0x5FC0_0000_0000_00 | k,
        namespace_data=0xDA7A0000 | k, wide_namespace_data=0xDA7A_5FC0_0000_0000 | k,
        if_ids={ingress: (0x0100 * k + 1, 0x5FC0_0000 | (0x0100 * k + 1)),
                egress: (0x0100 * k + 2, 0x5FC0_0000 | (0x0100 * k + 2))},
    )


def kernel_node(role: str, trace_type: int, hop_limit: int, egress_if: str | None = None) -> dict[str, int | None]:
    """The node data Linux writes at ``role`` for a packet it forwards (or takes in)
    with ``hop_limit`` written (the hop limit it arrived with, less one). Timestamps
    (the receive time, seconds and microseconds) are None: not known in advance.
    ``egress_if``: the device of the route the packet matched (default: the
    interface toward the receiver; a seg6local route's device is its own ``dev``)."""
    ids = node_ids(role)
    ingress, egress = IFACES[role]
    egress = egress_if or egress
    values: dict[str, int | None] = {
        "hop_limit": hop_limit, "node_id": ids.node_id,
        "ingress_if_id": ids.if_ids[ingress][0], "egress_if_id": ids.if_ids[egress][0],
        "timestamp_seconds": None, "timestamp_fraction": None,
        "transit_delay": NOT_AVAILABLE_32, "namespace_data": ids.namespace_data,
        "queue_depth": 0,  # the egress qdisc's backlog: veth's noqueue has none
        "checksum_complement": NOT_AVAILABLE_32,
        "wide_hop_limit": hop_limit, "wide_node_id": ids.wide_node_id,
        "wide_ingress_if_id": ids.if_ids[ingress][1], "wide_egress_if_id": ids.if_ids[egress][1],
        "wide_namespace_data": ids.wide_namespace_data, "buffer_occupancy": NOT_AVAILABLE_32,
        "opaque_len": 0, "schema_id": 0xFFFFFF,
    }
    present = field_offsets(trace_type)
    return {k: v for k, v in values.items() if k in present}


# ---- options ----------------------------------------------------------------------------
@dataclass(frozen=True)
class IoamOptions:
    """The IOAM part of an SRv6 testbed run.

    ``trace_type``: IOAM-Trace-Type (bits 0-11 and 22); ``namespace``: Namespace-ID;
    ``slots``: node data slots the stamper pre-allocates. ``vnf``: who fills the VNF
    host's slot — ``kernel`` (the End stand-in with IOAM enabled), ``proxy`` (a
    proxy's IOAM stage), ``none`` (nobody: t1 and t2 fill), ``auto`` (kernel with
    the End stand-in, else proxy). ``vnf_expect``: (field, value) pairs the checker
    requires of the VNF host's slot (default: the kernel's values with ``kernel``,
    nothing with ``proxy``: the slot is only exposed). ``vnf_delay``: the VNF host's
    transit delay must be plausible on every packet (available, and no longer than
    t2's timestamp less t1's plus 1 us when both are there), else the frame counts
    under ``vnf`` (what a proxy's IOAM stage is held to; the trace type needs bit 4).
    """

    trace_type: int = DEFAULT_TRACE_TYPE
    namespace: int = IOAM_NAMESPACE
    slots: int = DEFAULT_SLOTS
    vnf: str = "auto"
    vnf_expect: tuple[tuple[str, int], ...] | None = None
    vnf_delay: bool = False

    def __post_init__(self) -> None:
        bits = {b for b in range(24) if bit_set(self.trace_type, b)}
        if not 0 < self.trace_type < 1 << 24 or bits - SUPPORTED_BITS:
            raise UsageError(f"IOAM trace type 0x{self.trace_type:06x}: the testbed knows bits "
                             "0-11 and 22 (bit 0 = 0x800000), and needs one of them")
        if not 0 <= self.namespace <= 0xFFFF:
            raise UsageError("IOAM namespace must be within 0..0xFFFF")
        if self.vnf not in VNF_FILLERS:
            raise UsageError(f"IOAM vnf filler must be one of {', '.join(VNF_FILLERS)}")
        if not 1 <= self.slots or self.slots * node_words(self.trace_type) * 4 + 20 > MAX_HBH:
            raise UsageError(f"IOAM: {self.slots} slots of {node_words(self.trace_type)} words do not "
                             f"fit a {MAX_HBH}-octet Hop-by-Hop header")
        if self.vnf_expect is not None:
            pack_node(self.trace_type, dict(self.vnf_expect))  # names must exist
        if self.vnf_delay and not bit_set(self.trace_type, 4):
            raise UsageError(f"IOAM trace type 0x{self.trace_type:06x} has no transit delay "
                             "(bit 4, 0x080000) to check the VNF host's dwell time by")

    @property
    def node_words(self) -> int:
        return node_words(self.trace_type)

    @property
    def hbh_len(self) -> int:
        return len(trace_hbh(self))

    def filler(self, sf: str) -> str:
        """Who fills the VNF host's slot with the VNF host run as ``sf`` (end | proxy)."""
        if self.vnf != "auto":
            return self.vnf
        return "kernel" if sf == "end" else "proxy"

    def fillers(self, sf: str) -> tuple[str, ...]:
        """The nodes that have written node data when the packet reaches the checker,
        in the order they wrote it."""
        return MIDDLE if self.filler(sf) != "none" else ("t1", "t2")

    def describe(self, sf: str = "end") -> str:
        return (f"IOAM trace type 0x{self.trace_type:06x}, namespace 0x{self.namespace:04x}, "
                f"{self.slots} slots of {self.node_words} words, VNF host's slot: {self.filler(sf)}")


def trace_hbh(options: IoamOptions, nh: int = 43) -> bytes:
    """The Hop-by-Hop header the stamper inserts: PadN (2 octets, so the IOAM option
    starts 4n-aligned), the IOAM option (type 0x31, data length, reserved, IOAM
    Option-Type 0), the trace header (Namespace-ID; NodeLen, Flags 0, RemainingLen =
    all slots; IOAM-Trace-Type; reserved), zeroed node data, then a PadN when needed
    for 8n octets. ``nh``: the header after it (the SRH)."""
    data = 4 * options.slots * options.node_words
    trace = struct.pack("!HHI", options.namespace,
                        (node_len(options.trace_type) << 11) | (options.slots * options.node_words),
                        options.trace_type << 8) + bytes(data)
    body = b"\x01\x00" + bytes([IPV6_OPT_IOAM, 2 + len(trace), 0, IOAM_PREALLOCATED]) + trace
    pad = -(2 + len(body)) % 8  # 0 or 4
    body += b"\x01\x02\x00\x00" if pad else b""
    return bytes([nh, (2 + len(body)) // 8 - 1]) + body


#: where the trace header and the node data start in the inserted Hop-by-Hop header
TRACE_OFF = 8
DATA_OFF = 16


def insert_trace(frame: bytes, options: IoamOptions) -> bytes:
    """Python reference of the stamper's insertion into an Ethernet + IPv6 frame: the
    Hop-by-Hop header right after the IPv6 header, its next header the IPv6 header's
    old one, the IPv6 next header 0 and the payload length grown by its length."""
    hbh = trace_hbh(options, nh=frame[14 + 6])
    ip6 = bytearray(frame[14:14 + 40])
    ip6[6] = 0
    struct.pack_into("!H", ip6, 4, struct.unpack_from("!H", ip6, 4)[0] + len(hbh))
    return frame[:14] + bytes(ip6) + hbh + frame[14 + 40:]


# ---- what the checker compares --------------------------------------------------------
#: the checker's IOAM outcomes in the template's order: the first that applies counts
IOAM_OUTCOMES = ("ok", "no_trace", "layout", "overflow", "remaining", "t1", "vnf", "t2", "timestamps")
NODE_OUTCOMES = ("t1", "vnf", "t2")


@dataclass(frozen=True)
class Filler:
    """One node expected to have written node data, and what it must have written."""

    role: str
    expected: bytes  # node data (node_words * 4 octets)
    mask: bytes  # octets that are compared


@dataclass(frozen=True)
class IoamCheck:
    """Everything the checker's IOAM part compares (written to ``srv6_ioam_settings``)."""

    options: IoamOptions
    hbh: bytes  # the header as the stamper inserts it (octet 0: the SRH's next header, 43)
    head_mask: bytes  # which of its first 16 octets must arrive unchanged
    remaining: int  # RemainingLen expected at the checker
    fillers: tuple[Filler, ...]  # in the order they wrote
    #: octet offsets in a node of timestamp seconds / fraction / transit delay (-1: absent)
    ts_sec: int
    ts_frac: int
    delay: int
    #: the VNF host's transit delay must be plausible (IoamOptions.vnf_delay)
    vnf_delay: bool = False

    @property
    def node_octets(self) -> int:
        return 4 * self.options.node_words

    def slot_offset(self, k: int) -> int:
        """Octet offset in the Hop-by-Hop header of the k-th writer's node data (the
        first writer took the last slot)."""
        return DATA_OFF + (self.options.slots - 1 - k) * self.node_octets

    @property
    def vnf_index(self) -> int:
        """The VNF host's position among the writers, -1 if it writes nothing."""
        roles = [f.role for f in self.fillers]
        return roles.index("vnf") if "vnf" in roles else -1


def proxy_slot(trace_type: int, hop_limit: int = 61) -> tuple[tuple[str, int], ...]:
    """A suggestion for ``IoamOptions.vnf_expect`` with a proxy's IOAM stage: what the
    kernel would write as the VNF host (hop limit the packet leaves with, the VNF
    host's node id, ``in0``'s and ``out0``'s interface ids, its namespace data),
    "not available" for what a proxy cannot know (queue depth, checksum complement,
    buffer occupancy) and no schema; timestamps and transit delay unchecked (the
    checker's timestamp order and the VNF-slot statistics look at them)."""
    values = kernel_node("vnf", trace_type, hop_limit)
    values.update(timestamp_seconds=None, timestamp_fraction=None, transit_delay=None)
    for name in ("queue_depth", "checksum_complement", "buffer_occupancy"):
        if name in values:
            values[name] = NOT_AVAILABLE_32
    return tuple((k, v) for k, v in values.items() if v is not None)


def arrival_hop_limit(role: str, t1_arrival: int) -> int:
    """The outer hop limit a middle node receives: t1 gets t1_arrival, each node
    after one less (the VNF host decrements once, kernel End or proxy)."""
    return t1_arrival - MIDDLE.index(role)


def check_plan(options: IoamOptions, sf: str, t1_arrival: int) -> IoamCheck:
    """What the checker expects when the packet arrives at the decapsulating node.
    Kernel nodes write the hop limit they received less one; the kernel End stand-in's
    route is the seg6local one on ``in0``, so its egress interface id is ``in0``'s."""
    tt = options.trace_type
    fillers = []
    for role in options.fillers(sf):
        written = arrival_hop_limit(role, t1_arrival) - 1
        if role != "vnf":
            values = kernel_node(role, tt, written)
        elif options.vnf_expect is not None:
            values = dict(options.vnf_expect)
        elif options.filler(sf) == "kernel":
            values = kernel_node("vnf", tt, written, egress_if=IFACES["vnf"][0])
        else:
            values = {}
        fillers.append(Filler(role, *pack_node(tt, values)))
    # the header: all of the first 16 octets but Flags and RemainingLen (trace octets 2-3)
    head_mask = bytearray(b"\xff" * DATA_OFF)
    head_mask[TRACE_OFF + 2] = 0xF8  # NodeLen kept, Flags checked on their own
    head_mask[TRACE_OFF + 3] = 0x00
    offsets = field_offsets(tt)
    return IoamCheck(
        options=options, hbh=trace_hbh(options), head_mask=bytes(head_mask),
        remaining=(options.slots - len(fillers)) * options.node_words, fillers=tuple(fillers),
        ts_sec=offsets.get("timestamp_seconds", (-1, 0))[0],
        ts_frac=offsets.get("timestamp_fraction", (-1, 0))[0],
        delay=offsets.get("transit_delay", (-1, 0))[0],
        vnf_delay=options.vnf_delay and options.filler(sf) != "none",
    )


def _hbh_of(frame: bytes) -> bytes | None:
    """The Hop-by-Hop header right after the frame's outer IPv6 header, if any."""
    if len(frame) < 14 + 40 + 2 or frame[14 + 6] != 0:
        return None
    return frame[54:54 + 8 * (frame[55] + 1)]


def _masked_equal(got: bytes, expected: bytes, mask: bytes) -> bool:
    return all((g & m) == (e & m) for g, e, m in zip(got, expected, mask))


def _usec(node: bytes, plan: IoamCheck) -> int | None:
    """A node's timestamp in microseconds (seconds and POSIX fraction), if both are there."""
    if plan.ts_sec < 0 or plan.ts_frac < 0:
        return None
    sec, frac = (struct.unpack_from("!I", node, off)[0] for off in (plan.ts_sec, plan.ts_frac))
    return sec * 1_000_000 + frac


#: the longest the t1 -> t2 path may take by the timestamps (microseconds)
MAX_PATH_US = 1_000_000


def reference_check(frame: bytes, plan: IoamCheck) -> tuple[str, list[str]]:
    """The checker's IOAM verdict on an SRv6 frame carrying TCP (the SRH after at most
    one Hop-by-Hop header, as ``srv6_find`` finds it): (outcome, every outcome that
    applies).

    In order: ``no_trace`` (no Hop-by-Hop header, or one not as long as the inserted
    one), ``layout`` (its first 16 octets changed where the mask says), ``overflow``
    (the O flag), ``remaining`` (RemainingLen),
    ``t1`` / ``vnf`` / ``t2`` (that writer's node data differs under its mask; with
    ``vnf_delay`` also: the VNF host's transit delay not available, overflowed, or
    longer than t2's timestamp less t1's plus 1 us), ``timestamps`` (t1's later than
    t2's, t1 -> t2 longer than 1 s, or a fraction of a second >= 10^6 microseconds at
    t1 or t2)."""
    hbh = _hbh_of(frame)
    if hbh is None or len(hbh) != len(plan.hbh) or len(hbh) < DATA_OFF:
        return "no_trace", ["no_trace"]
    found = []
    if not _masked_equal(hbh[1:DATA_OFF], plan.hbh[1:DATA_OFF], plan.head_mask[1:]):
        found.append("layout")
    flags_rem = struct.unpack_from("!H", hbh, TRACE_OFF + 2)[0]
    if flags_rem & 0x0400:  # O, the first of the four flag bits
        found.append("overflow")
    if flags_rem & 0x7F != plan.remaining:
        found.append("remaining")
    nodes = {}
    for k, filler in enumerate(plan.fillers):
        off = plan.slot_offset(k)
        node = hbh[off:off + plan.node_octets]
        nodes[filler.role] = node
        if not _masked_equal(node, filler.expected, filler.mask):
            found.append(filler.role)
    t1, t2 = (_usec(nodes[r], plan) for r in ("t1", "t2"))
    if plan.vnf_delay and "vnf" in nodes and plan.delay >= 0:
        raw = struct.unpack_from("!I", nodes["vnf"], plan.delay)[0]
        if raw & DELAY_OVERFLOW or (t1 is not None and t1 <= t2 and raw > (t2 - t1) * 1000 + 1000):
            found.append("vnf")
    if t1 is not None:
        fractions = [struct.unpack_from("!I", nodes[r], plan.ts_frac)[0] for r in ("t1", "t2")]
        if not t1 <= t2 <= t1 + MAX_PATH_US or max(fractions) >= 1_000_000:
            found.append("timestamps")
    order = [o for o in IOAM_OUTCOMES if o in found]
    return (order[0] if order else "ok"), order


def vnf_slot(frame: bytes, plan: IoamCheck) -> dict[str, Any] | None:
    """What the checker records of the VNF host's slot (None: it writes nothing): its
    fields, and the transit delay as ``delay`` = ``available`` (ns), ``unavailable``
    (0xFFFFFFFF) or ``overflow`` (top bit); ``path_ns``: t2's timestamp less t1's;
    ``exceeds_path``: an available delay longer than that path plus 1 us."""
    k = plan.vnf_index
    hbh = _hbh_of(frame)
    if k < 0 or hbh is None or len(hbh) != len(plan.hbh):
        return None
    off = plan.slot_offset(k)
    node = hbh[off:off + plan.node_octets]
    out: dict[str, Any] = {"fields": unpack_node(plan.options.trace_type, node)}
    roles = [f.role for f in plan.fillers]
    t1, t2 = (_usec(hbh[plan.slot_offset(roles.index(r)):][:plan.node_octets], plan) for r in ("t1", "t2"))
    out["path_ns"] = (t2 - t1) * 1000 if t1 is not None else None
    if plan.delay >= 0:
        raw = struct.unpack_from("!I", node, plan.delay)[0]
        if raw == NOT_AVAILABLE_32:
            out["delay"] = "unavailable"
        elif raw & DELAY_OVERFLOW:
            out["delay"] = "overflow"
        else:
            out["delay"] = "available"
            out["delay_ns"] = raw
            out["exceeds_path"] = out["path_ns"] is not None and raw > out["path_ns"] + 1000
    return out


def decode_hbh(hbh: bytes) -> dict[str, Any]:
    """A Hop-by-Hop header as the stamper inserts it (IOAM option after a 2-octet
    PadN), decoded: the trace header's fields and the filled node data, the newest
    first (for the demo's summary; the tests dissect with sfcframe_ioam's scapy layers)."""
    if len(hbh) < DATA_OFF or hbh[4] != IPV6_OPT_IOAM:
        return {"raw": hbh.hex()}
    namespace, word, trace_type = struct.unpack_from("!HHI", hbh, TRACE_OFF)
    trace_type >>= 8
    nodelen, remaining = word >> 11, word & 0x7F
    octets = 4 * (nodelen + (1 if bit_set(trace_type, OPAQUE_BIT) else 0))
    end = min(len(hbh), 4 + 2 + hbh[5])  # the option's end
    nodes = []
    off = DATA_OFF + 4 * remaining
    while octets and off + octets <= end:
        nodes.append(unpack_node(trace_type, hbh[off:off + octets]))
        off += octets
    return {"namespace_id": namespace, "node_len": nodelen, "overflow": bool(word & 0x0400),
            "remaining_len": remaining, "trace_type": f"0x{trace_type:06x}", "nodes": nodes}


def options_of(cfg: Any, sf: str | None = None) -> IoamOptions | None:
    """The IOAM options of a demo run (``DemoConfig.ioam``, ``ioam_trace_type``,
    ``ioam_slots``, ``ioam_vnf``, ``stages``). With the proxy's ``ioam`` stage the trace
    is on whether or not ``ioam`` says so, and the VNF host's slot is held to what the
    stage is configured to write (:func:`proxy_slot`) and to a plausible transit delay.
    ``sf``: what the VNF host runs (end | proxy), when known: a proxy without the stage
    leaves the slot to nobody (``vnf`` auto becomes none)."""
    stage = "ioam" in tuple(getattr(cfg, "stages", None) or ())
    if not (getattr(cfg, "ioam", False) or stage):
        return None
    trace_type = getattr(cfg, "ioam_trace_type", None)
    trace_type = DEFAULT_TRACE_TYPE if trace_type is None else trace_type
    slots = getattr(cfg, "ioam_slots", None) or DEFAULT_SLOTS
    vnf = getattr(cfg, "ioam_vnf", "auto")
    if vnf == "auto" and sf == "proxy" and not stage:
        vnf = "none"
    if not stage:
        return IoamOptions(trace_type=trace_type, slots=slots, vnf=vnf)
    expect = proxy_slot(trace_type, hop_limit=proxy_hop_limit())
    return IoamOptions(trace_type=trace_type, slots=slots, vnf=vnf, vnf_expect=expect,
                       vnf_delay=bit_set(trace_type, 4))


def proxy_hop_limit(t1_arrival: int = 63) -> int:
    """The hop limit a proxy's IOAM stage writes as the VNF host: the restored outer
    header's, i.e. what the VNF host received (t1's forwarded hop limit) less the srv6
    update rule's one decrement. A Linux node writes the hop limit it received less one:
    the same number, because the proxy decrements exactly once (t1 receives 63 and
    writes 62, the VNF host receives 62 and the proxy writes 61, t2 writes 60)."""
    return arrival_hop_limit("vnf", t1_arrival) - 1
