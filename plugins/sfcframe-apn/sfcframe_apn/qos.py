"""The APN stage's mapping of an APN ID to the inner packet's DSCP (or skb->mark),
and its undo: the Python reference of ``apn.c.j2``'s inner-packet hooks.

The DSCP is the upper six bits of the IPv4 TOS byte / IPv6 Traffic Class; the
two ECN bits are never touched (ingress keeps the sender's, egress keeps what
the function or a queue set, e.g. CE). The IPv4 header checksum is updated
incrementally as RFC 1624 (eqn. 3) says, in the same 16-bit steps as the C, so
both agree byte for byte even on a packet whose checksum was wrong already.
IPv6 has no header checksum, and neither TCP's nor UDP's pseudo-header covers
the DSCP, so nothing else changes.

The entry bytes the stage keeps per packet (:class:`Area`, 32 bytes) hold what
egress needs to undo the mapping: the original TOS / Traffic Class byte and
mark, and the values set.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD

MAPPED = 0x1  # flags: the inner packet was changed at ingress
AREA = struct.Struct("=BBBBII16s4x")  # id_len, flags, tos_orig, tos_new, mark_orig, mark_new, id
ENTRY_BYTES = AREA.size  # 32


@dataclass(frozen=True)
class Area:
    """The stage's bytes in a cache entry (``struct apn_area`` in C)."""

    id_len: int = 0  # 0: the packet carried no readable APN ID
    flags: int = 0
    tos_orig: int = 0
    tos_new: int = 0
    mark_orig: int = 0
    mark_new: int = 0
    apn_id: bytes = b""

    def pack(self) -> bytes:
        return AREA.pack(self.id_len, self.flags, self.tos_orig, self.tos_new, self.mark_orig,
                         self.mark_new, self.apn_id.ljust(16, b"\x00"))

    @classmethod
    def unpack(cls, raw: bytes) -> "Area":
        id_len, flags, tos_orig, tos_new, mark_orig, mark_new, ident = AREA.unpack(
            raw[:AREA.size])
        return cls(id_len, flags, tos_orig, tos_new, mark_orig, mark_new, ident[:id_len])

    def with_(self, **changes) -> "Area":
        return replace(self, **changes)


def _fold(x: int) -> int:
    while x >> 16:
        x = (x & 0xFFFF) + (x >> 16)
    return x


def csum_replace(check: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit word m -> m'."""
    return ~_fold((~check & 0xFFFF) + (~old & 0xFFFF) + new) & 0xFFFF


def tos_of(l3: bytes, ethertype: int) -> int | None:
    """The TOS byte (IPv4) or Traffic Class (IPv6) of ``l3``; None if too short."""
    if ethertype == ETH_P_IP and len(l3) >= 20:
        return l3[1]
    if ethertype == ETH_P_IPV6 and len(l3) >= 40:
        return ((l3[0] & 0x0F) << 4) | (l3[1] >> 4)
    return None


def with_tos(l3: bytes, ethertype: int, tos: int) -> bytes:
    """``l3`` with its TOS / Traffic Class set to ``tos`` (IPv4: checksum updated)."""
    out = bytearray(l3)
    if ethertype == ETH_P_IP:
        old_word = (out[0] << 8) | out[1]
        out[1] = tos
        check = struct.unpack_from("!H", out, 10)[0]
        struct.pack_into("!H", out, 10, csum_replace(check, old_word, (out[0] << 8) | tos))
    else:
        out[0] = (out[0] & 0xF0) | (tos >> 4)
        out[1] = ((tos & 0x0F) << 4) | (out[1] & 0x0F)
    return bytes(out)


def with_dscp(tos: int, dscp: int) -> int:
    """``tos`` with its six DSCP bits replaced, its ECN bits kept."""
    return ((dscp & 0x3F) << 2) | (tos & 0x03)


@dataclass(frozen=True)
class Mapping:
    """The runtime mapping as the settings map holds it: the stage's settings."""

    target: str  # "dscp" | "mark"
    enabled: bool
    mask: int
    slots: tuple[tuple[int, int], ...]  # (APN ID match value, value); value == none: unused
    fallback: int
    none: int  # the "no mapping" value (64 for DSCP, 2^32 for a mark)

    @classmethod
    def of(cls, target: str, settings, slots: int) -> "Mapping":
        none = NONE[target]
        return cls(target, bool(settings["enabled"]), settings["mask"],
                   tuple((settings[f"id{i}"], settings[f"value{i}"]) for i in range(slots)),
                   settings["fallback"], none)

    def value(self, match: int) -> int | None:
        """The value for an APN ID whose match value is ``match``; None: leave it."""
        if not self.enabled:
            return None
        for ident, value in self.slots:
            if value != self.none and (ident & self.mask) == (match & self.mask):
                return value
        return None if self.fallback == self.none else self.fallback


#: per target, the settings value that means "no mapping"
NONE = {"dscp": 64, "mark": 1 << 32}
