"""The ``apn`` stage: application-aware networking (APN) for the SFC-unaware function.

It rides the ``apn`` carrier of the srv6 encapsulation: an APN header
(:mod:`sfcframe_apn.header`) in an IPv6 option of the outer Hop-by-Hop or
Destination Options header, or in an SRH TLV. The proxy caches and restores
it byte for byte with the rest of the outer headers; the stage adds what the
operator of a legacy function wants from it:

- **counters per APN ID**: packets and bytes of the inner packets handed to the
  function, per APN ID (label ``apn_id``; ``none`` for packets without one; at
  most ``max_ids`` IDs, the rest under ``other``), in ``sfcframe stats`` (JSON and
  Prometheus);
- **optionally, a mapping** (``map=dscp|mark``, build parameter) of the APN ID to
  the inner packet's DSCP, or to ``skb->mark`` for functions in the kernel
  (``ingress=tc``: XDP has no skb), so the function's own QoS can act on it;
  egress undoes it before the header goes back. The table is in runtime settings
  (``sfcframe set NAME apn.id0=0x300A0C08 apn.value0=46``): ``map_slots`` pairs
  of APN ID (its leading 64 bits, under ``mask``) and value, a ``fallback`` for the
  IDs no slot names, ``enabled`` to switch it off. :mod:`sfcframe_apn.qos` is the
  Python reference of every byte it writes.

The code points the drafts leave TBD are build parameters with experimental
defaults: ``option_type`` 0x1E (RFC 4727; the act bits 00 make a node that does
not know it skip it, chg 0: not changed en route) and ``tlv_type`` 124 (RFC
8754's experimental range 124..126, below 128: not changed en route).
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.params import Param
from sfcframe.plugin import BenchCase, InnerResult, LabelledCounter, StagePlugin, StageResult

from sfcframe_apn import header, qos

#: where the carrier looks (sfcframe.encaps.srv6.apn_carrier), in the stage's order
IN_HBH, IN_DOH, IN_SRH = 0, 1, 2
U64 = (1 << 64) - 1
LABEL_BYTES = 17  # ID length, then the ID (16 bytes, zero-padded)


class ApnStage(StagePlugin):
    contract = 2
    description = ("APN (application-aware networking) for the function: per-APN-ID packet and "
                   "byte counters, optional APN ID -> DSCP / skb->mark mapping undone at egress; "
                   "APN in an SRv6 outer Hop-by-Hop / Destination option or SRH TLV")
    template = "apn.c.j2"
    carriers = ("apn",)
    params = (
        Param("option_type", "int", 0x1E, "IPv6 option type of the APN option in the Hop-by-Hop "
              "/ Destination Options header (TBD in the draft; 0x1E: RFC 4727 experimental)",
              0, 255),
        Param("tlv_type", "int", 124, "SRH TLV type of the APN TLV (TBD in the draft; 124: "
              "RFC 8754 experimental range 124..126)", 0, 255),
        Param("map", "choice", "none", "map the APN ID to the inner packet's DSCP or to "
              "skb->mark (ingress=tc) for the function, undone at egress", choices=(
                  "none", "dscp", "mark")),
        Param("map_slots", "int", 4, "APN ID -> value pairs in the runtime settings", 1, 16),
        Param("max_ids", "int", 1024, "APN IDs counted one by one (the rest as 'other')",
              1, 65536),
    )

    def validate(self, values: Mapping[str, Any]) -> None:
        if values["option_type"] in (0, 1) or values["tlv_type"] in (0, 1, 4, 5):
            raise ParamError("stage apn: option_type 0/1 and tlv_type 0/1/4/5 are Pad1, PadN "
                             "and HMAC: choose a free (experimental) code point")

    def validate_core(self, values: Mapping[str, Any], core: Mapping[str, Any]) -> None:
        if values["map"] == "mark" and core["ingress"] != "tc":
            raise ParamError("stage apn: map=mark writes skb->mark, which XDP ingress has not: "
                             "use ingress=tc (or map=dscp)")

    def stage_kinds(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        """Hop-by-Hop option, then Destination option, then SRH TLV: the first found wins."""
        return (IN_HBH << 8 | values["option_type"], IN_DOH << 8 | values["option_type"],
                IN_SRH << 8 | values["tlv_type"])

    def template_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Adds ``kinds`` (carrier kinds in search order) and ``none`` (the value that
        means "no mapping" for this target)."""
        return {**values, "kinds": self.stage_kinds(values),
                "none": qos.NONE.get(values["map"], 0)}

    def entry_bytes(self, values: Mapping[str, Any]) -> int:
        return qos.ENTRY_BYTES

    def settings(self, values: Mapping[str, Any]) -> tuple[Param, ...]:
        if values["map"] == "none":
            return ()
        none = qos.NONE[values["map"]]
        what = "DSCP (0..63)" if values["map"] == "dscp" else "skb->mark (32 bits)"
        slots = []
        for i in range(values["map_slots"]):
            slots += [Param(f"id{i}", "int", 0, f"slot {i}: APN ID (its leading 64 bits)", 0, U64),
                      Param(f"value{i}", "int", none, f"slot {i}: {what}; {none}: slot unused",
                            0, none)]
        return (
            Param("enabled", "int", 1, "1: map, 0: leave every packet as it is", 0, 1),
            Param("mask", "int", U64, "bits of the APN ID the slots compare", 0, U64),
            *slots,
            Param("fallback", "int", none, f"{what} for APN IDs no slot names; {none}: leave "
                  "them", 0, none),
        )

    def counters(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        return ("mapped", "unmapped", "no_apn", "malformed", "undone", "kept")

    def labelled_counters(self, values: Mapping[str, Any]) -> dict[str, LabelledCounter]:
        return {"ids": LabelledCounter(
            "apn_id", LABEL_BYTES, values["max_ids"],
            "inner packets and their bytes handed to the function, per APN ID")}

    def label_text(self, counter: str, raw: bytes, values: Mapping[str, Any]) -> str:
        """``none`` (no APN ID), else the ID in hex with its own width."""
        size = raw[0]
        return "none" if size == 0 else "0x" + raw[1:1 + size].hex()

    # ---- test oracle -------------------------------------------------
    def bench_cases(self, values: Mapping[str, Any]) -> list[BenchCase]:
        """A 32-bit APN ID in an outer Hop-by-Hop option (the default type 0x1E):
        counted per APN ID only; counted and mapped to DSCP 46 for the function,
        the mapping undone at egress."""
        apn_id = 0x300A0C08
        body = header.ApnHeader(1, apn_id).pack()
        return [
            BenchCase(0x1E, body, {}, "apn", "apn stage: packets and bytes counted per APN ID",
                      (), label="apn-count"),
            BenchCase(0x1E, body, {"id0": apn_id, "value0": 46}, "apn",
                      "apn stage: counted, APN ID mapped to DSCP 46 for the function and undone",
                      ("mapped", "undone"), label="apn-dscp", params=(("map", "dscp"),)),
        ]

    def reference_ingress(self, body, kind, values, settings, now) -> StageResult:
        """The APN ID into the entry (id_len 0: none, or not readable)."""
        ident = header.id_bytes(body) if body is not None else None
        area = qos.Area(len(ident), apn_id=ident) if ident else qos.Area()
        return StageResult("ok", area.pack())

    def reference_egress(self, body, kind, area, values, settings, now, *,
                         hop_limit: int = 0, room: int = 0) -> StageResult:
        """The header goes back as it came (the carrier data is not touched)."""
        return StageResult("", body or b"")

    def reference_inner_ingress(self, l3, ethertype, area, values, settings) -> InnerResult:
        rec = qos.Area.unpack(area)
        tos = qos.tos_of(l3, ethertype)
        if values["map"] == "none" or not rec.id_len or tos is None:
            return InnerResult("ok", area, l3)
        value = qos.Mapping.of(values["map"], settings, values["map_slots"]).value(
            header.match_value(rec.apn_id))
        if value is None:
            return InnerResult("ok", area, l3)
        if values["map"] == "mark":  # the mark is not in the packet: the test reads it
            rec = rec.with_(flags=qos.MAPPED, mark_new=value)
            return InnerResult("ok", rec.pack(), l3)
        new = qos.with_dscp(tos, value)
        rec = rec.with_(flags=qos.MAPPED, tos_orig=tos, tos_new=new)
        return InnerResult("ok", rec.pack(), qos.with_tos(l3, ethertype, new))

    def reference_inner_egress(self, l3, ethertype, area, values, settings) -> InnerResult:
        rec = qos.Area.unpack(area)
        if not rec.flags & qos.MAPPED:
            return InnerResult("ok", area, l3)
        if values["map"] == "mark":
            return InnerResult("undone", area, l3)  # the test's mark is the one set
        tos = qos.tos_of(l3, ethertype)
        if tos is None or tos >> 2 != rec.tos_new >> 2:  # the function re-marked it: its call
            return InnerResult("kept", area, l3)
        return InnerResult("undone", area,
                           qos.with_tos(l3, ethertype, (rec.tos_orig & 0xFC) | (tos & 0x03)))

    def body_strategy(self, values: Mapping[str, Any]):
        """(kind, body): a valid APN header at one of the three places."""
        from hypothesis import strategies as st

        return st.tuples(st.sampled_from(self.stage_kinds(values)), header.strategy(48))
