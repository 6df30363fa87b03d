"""The APN header as bytes: what the stage reads, and what its tests build.

Layout (draft-li-apn-header-05, section 3; carried in IPv6 as
draft-li-6man-apn-ipv6-encap-01 describes, see the README)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  APN-ID-Type  |     Flags     |         APN-Para-Type         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    ~               APN ID (32, 64 or 128 bits)                     ~
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    ~   APN Parameters: 32 bits per bit set in APN-Para-Type        ~
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

APN-ID-Type 1, 2, 3: an APN ID of 32, 64, 128 bits. APN-Para-Type: one bit per
optional parameter, most significant first (bandwidth, delay, jitter, packet
loss ratio, ...), each parameter 32 bits, in bit order. The proxy caches and
restores the whole header byte for byte (it is part of SRv6's outer headers);
the stage only reads the type and the APN ID. Flags and parameters are opaque
to it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: APN-ID-Type -> bytes of the APN ID
ID_BYTES = {1: 4, 2: 8, 3: 16}
FIXED = 4  # APN-ID-Type, Flags, APN-Para-Type
PARAM_BYTES = 4
#: the parameters the draft names for the first APN-Para-Type bits (most significant first)
PARAM_NAMES = ("bandwidth", "delay", "jitter", "packet_loss_ratio")


@dataclass(frozen=True)
class ApnHeader:
    id_type: int  # APN-ID-Type
    apn_id: int
    flags: int = 0
    para_type: int = 0  # APN-Para-Type bitmap
    params: tuple[int, ...] = ()  # one 32-bit value per bit set, in bit order

    def pack(self) -> bytes:
        size = ID_BYTES[self.id_type]
        if len(self.params) != bin(self.para_type).count("1"):
            raise ValueError("one parameter per bit set in APN-Para-Type")
        return (struct.pack("!BBH", self.id_type, self.flags, self.para_type)
                + self.apn_id.to_bytes(size, "big")
                + b"".join(struct.pack("!I", p) for p in self.params))

    @classmethod
    def parse(cls, data: bytes) -> "ApnHeader | None":
        """The header at the start of ``data``; None when it is not one this
        implementation reads (unknown APN-ID-Type, or shorter than its ID)."""
        if len(data) < FIXED or data[0] not in ID_BYTES:
            return None
        id_type, flags, para_type = struct.unpack_from("!BBH", data)
        size = ID_BYTES[id_type]
        if len(data) < FIXED + size:
            return None
        count = bin(para_type).count("1")
        params = tuple(struct.unpack_from(f"!{count}I", data, FIXED + size)) if (
            len(data) >= FIXED + size + PARAM_BYTES * count) else ()
        return cls(id_type, int.from_bytes(data[FIXED:FIXED + size], "big"), flags,
                   para_type, params)


def id_bytes(data: bytes) -> bytes | None:
    """The APN ID bytes of the header at the start of ``data`` (None: not readable)."""
    parsed = ApnHeader.parse(data)
    if parsed is None:
        return None
    return data[FIXED:FIXED + ID_BYTES[parsed.id_type]]


def match_value(apn_id: bytes) -> int:
    """What the stage's mapping matches: the APN ID's leading 64 bits as a number
    (the whole ID for 32- and 64-bit IDs)."""
    return int.from_bytes(apn_id[:8], "big")


def strategy(max_bytes: int = 64):
    """Hypothesis strategy of valid APN headers (bytes) of at most ``max_bytes``:
    any ID type, ID, flags and parameters."""
    from hypothesis import strategies as st

    @st.composite
    def headers(draw):
        id_type = draw(st.sampled_from(sorted(ID_BYTES)))
        room = (max_bytes - FIXED - ID_BYTES[id_type]) // PARAM_BYTES
        count = draw(st.integers(0, max(0, min(room, 16))))
        bits = draw(st.lists(st.integers(0, 15), min_size=count, max_size=count, unique=True))
        para_type = sum(1 << (15 - b) for b in bits)
        return ApnHeader(id_type, draw(st.integers(0, (1 << (8 * ID_BYTES[id_type])) - 1)),
                         draw(st.integers(0, 255)), para_type,
                         tuple(draw(st.integers(0, 2**32 - 1)) for _ in bits)).pack()

    return headers()
