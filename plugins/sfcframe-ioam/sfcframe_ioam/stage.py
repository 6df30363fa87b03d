"""The ``ioam`` stage: IOAM trace options (RFC 9197) filled for the SFC-unaware function.

It rides the ``ioam`` carrier of an encapsulation: IOAM option 49 in the outer
IPv6 Hop-by-Hop header of SRv6 (RFC 9486), or the IOAM header behind NSH
(RFC 9452). At ingress it records when the packet entered the function's host
(8 bytes in the cache entry); at egress, before the header goes back onto the
packet, it fills this hop's node data in a pre-allocated trace, or inserts it
into an incremental one (NSH only: SRv6's Hop-by-Hop header is not grown in
flight, so an incremental trace there gets the Overflow flag), as
``sfcframe_ioam.trace`` describes field by field: hop limit and node id,
interface ids, POSIX timestamps, **the transit delay through the function**,
namespace data; what it cannot provide stays "not available". A trace of
another namespace is left alone, a full one gets the Overflow flag; every case
is counted. Every restored packet's dwell time goes into a log2 histogram
(``sfcframe stats``: p50/p99).

Node ids, interface ids, namespace and the clock offset are runtime settings
(``sfcframe set NAME ioam.node_id=7``): never compiled into the C.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

from sfcframe.params import Param
from sfcframe.plugin import BenchCase, Loose, StagePlugin, StageResult

from sfcframe_ioam import trace

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1


class IoamStage(StagePlugin):
    contract = 2
    description = ("IOAM trace (RFC 9197) filled on behalf of the function: node data with the "
                   "transit delay through it; NSH (RFC 9452) and SRv6 Hop-by-Hop (RFC 9486)")
    template = "ioam.c.j2"
    carriers = ("ioam",)
    kinds = (trace.PREALLOCATED, trace.INCREMENTAL)

    def template_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Adds ``fields``: per trace-type bit its size, its mask, the masks of the
        4- and 8-byte fields before it (so the C finds each field's offset by
        popcount, without branching) and the C expression of its value."""
        return {**values, "fields": trace_fields()}

    def entry_bytes(self, values: Mapping[str, Any]) -> int:
        return 8  # the ingress time (monotonic ns)

    def settings(self, values: Mapping[str, Any]) -> tuple[Param, ...]:
        return (
            Param("namespace", "int", 0, "IOAM Namespace-ID this node serves", 0, 0xFFFF),
            Param("node_id", "int", 0xFFFFFF, "node id (24 bits; all ones: not available)",
                  0, 0xFFFFFF),
            Param("node_id_wide", "int", (1 << 56) - 1, "wide node id (56 bits)", 0, (1 << 56) - 1),
            Param("ingress_if", "int", 0xFFFF, "ingress interface id (16 bits)", 0, 0xFFFF),
            Param("egress_if", "int", 0xFFFF, "egress interface id (16 bits)", 0, 0xFFFF),
            Param("ingress_if_wide", "int", U32, "wide ingress interface id (32 bits)", 0, U32),
            Param("egress_if_wide", "int", U32, "wide egress interface id (32 bits)", 0, U32),
            Param("namespace_data", "int", U32, "namespace-specific data (32 bits)", 0, U32),
            Param("namespace_data_wide", "int", U64, "wide namespace-specific data (64 bits)",
                  0, U64),
            Param("clock_offset_ns", "int", 0, "POSIX time minus the kernel's monotonic clock, "
                  "ns (set at up; 0: timestamps not available)", 0, U64),
        )

    def initial_settings(self, values: Mapping[str, Any]) -> dict[str, int]:
        return {"clock_offset_ns": time.time_ns() - time.monotonic_ns()}

    def counters(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        return ("filled", "overflow", "other_namespace", "malformed", "no_trace")

    def histograms(self, values: Mapping[str, Any]) -> dict[str, str]:
        return {"ioam_dwell_ns": "transit delay through the function (ingress to egress), ns"}

    def bench_cases(self, values: Mapping[str, Any]) -> list[BenchCase]:
        """A pre-allocated trace with room for 4 nodes of 5 words, one written: this
        hop writes hop limit + node id, interface ids, transit delay, wide node id."""
        ttype = (1 << 23) | (1 << 22) | (1 << 19) | (1 << 15)
        return [BenchCase(trace.PREALLOCATED, trace.preallocated(0, ttype, 5, 4, [bytes(20)]), {},
                          "trace", "ioam stage filling this hop's node data (5 words: hop limit "
                          "+ node id, interface ids, transit delay, wide node id)", ("filled",))]

    # ---- test oracle -------------------------------------------------
    def reference_ingress(self, body, kind, values, settings, now) -> StageResult:
        """The ingress time, 8 bytes in host order (the clock while ingress ran)."""
        lo, hi = now
        return StageResult("ok", bytes(8), (Loose(0, 8, lo, hi, order=sys.byteorder),))

    def reference_egress(self, body, kind, area, values, settings, now, *,
                         hop_limit: int = 0, room: int = 0) -> StageResult:
        if body is None:
            return StageResult("no_trace")
        ingress_ns = int.from_bytes(area[:8], sys.byteorder)
        done = trace.fill(kind, body, hop_limit, dict(settings), ingress_ns, now, room)
        loose = tuple(Loose(s.offset, s.size, s.lo, s.hi) for s in done.spans)
        return StageResult(done.outcome, done.body, loose)

    def body_strategy(self, values: Mapping[str, Any]):
        """(kind, body): pre-allocated and incremental traces with any trace type,
        NodeLen, room and earlier nodes, mostly in namespace 0."""
        from hypothesis import strategies as st

        @st.composite
        def bodies(draw):
            kind = draw(st.sampled_from(self.kinds))
            namespace = draw(st.sampled_from([0, 0, 0, 7]))
            ttype = draw(st.integers(0, (1 << 24) - 1).map(lambda t: t & ~1))  # bit 23 reserved
            words = draw(st.integers(1, 12))
            node = lambda: draw(st.binary(min_size=4 * words, max_size=4 * words))  # noqa: E731
            if kind == trace.PREALLOCATED:
                slots = draw(st.integers(1, 4))
                done = draw(st.integers(0, slots))
                return kind, trace.preallocated(namespace, ttype, words, slots,
                                                [node() for _ in range(done)])
            done = draw(st.integers(0, 2))
            room = draw(st.integers(0, 3)) * words
            return kind, trace.incremental(namespace, ttype, words, room,
                                           [node() for _ in range(done)])

        return bodies()


#: the C value of each trace-type bit's field (names of ioam_node_data()'s locals and
#: the settings struct s); the rest are "not available"
_FIELD_VALUES = {
    0: ("hop limit, node id", "(hop << 24) | (s->node_id & 0xFFFFFF)"),
    1: ("ingress and egress interface ids", "((s->ingress_if & 0xFFFF) << 16) | (s->egress_if & 0xFFFF)"),
    2: ("timestamp seconds", "sec"),
    3: ("timestamp subseconds (us)", "usec"),
    4: ("transit delay (ns)", "delay"),
    5: ("namespace data", "s->namespace_data & 0xFFFFFFFF"),
    8: ("hop limit, wide node id", "(hop << 56) | (s->node_id_wide & 0x00FFFFFFFFFFFFFFULL)"),
    9: ("wide interface ids", "((s->ingress_if_wide & 0xFFFFFFFF) << 32) | (s->egress_if_wide & 0xFFFFFFFF)"),
    10: ("wide namespace data", "s->namespace_data_wide"),
    22: ("opaque state snapshot: none, length 0", "0x00FFFFFF"),
}
_NOT_AVAILABLE = {6: "queue depth", 7: "checksum complement", 11: "buffer occupancy",
                  **{b: "undefined" for b in range(12, 22)}}


def trace_fields() -> list[dict[str, Any]]:
    out = []
    for bit in range(0, 23):
        size = trace.FIELD_BYTES[bit]
        before4 = sum(1 << (23 - b) for b in range(bit) if trace.FIELD_BYTES[b] == 4)
        before8 = sum(1 << (23 - b) for b in range(bit) if trace.FIELD_BYTES[b] == 8)
        what, value = _FIELD_VALUES.get(bit, (f"{_NOT_AVAILABLE.get(bit)}: not available",
                                              "0xFFFFFFFF"))
        out.append({"bit": bit, "size": size, "mask": 1 << (23 - bit), "before4": before4,
                    "before8": before8, "what": what, "value": value})
    return out
