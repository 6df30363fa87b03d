"""The cache entry as bytes: ``struct sfc_value`` (bpf_templates/sfc_proxy.h.j2).

An entry holds the encapsulation to put back, as it is on the wire, behind a
small head. Two layouts, chosen by the header capacity of the build:

narrow (capacity <= 252, every MPLS and NSH build)::

    __u8 flags; __u8 len; __be16 outer_proto; __u8 hdr[capacity]; [__u8 area[N];]

wide (capacity > 252, e.g. SRv6 with 16 segments and TLVs)::

    __u8 flags; __u8 reserved; __u16 len; __u16 reserved2; __be16 outer_proto;
    __u8 hdr[capacity]; [__u8 area[N];]

``area`` holds what the build's stages record per packet (e.g. an ingress
timestamp); it exists only when they record something.

``outer_proto`` sits right in front of ``hdr`` in both, so egress writes the
ethertype and the header in one run of bytes. The size is rounded up to 4.
``flags`` bit 0 marks a plain packet's marker (``len`` then counts identical
plain packets in flight); bit 1 marks a static header set at runtime.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sfcframe.errors import UsageError

#: largest capacity of the narrow layout (its len is one byte; 252 keeps the size a multiple of 4)
NARROW_MAX = 252
#: largest capacity sfcframe builds: the entry lives on the BPF stack (512 bytes)
#: next to the key and the programs' other locals
CAPACITY_MAX = 480

FLAG_PLAIN = 0x1
FLAG_SET = 0x2

_NARROW = struct.Struct("!BBH")  # flags, len, outer_proto
_WIDE = struct.Struct("=BBHH")  # flags, reserved, len (host order), reserved2
_PROTO = struct.Struct("!H")


@dataclass(frozen=True)
class Entry:
    flags: int
    length: int  # header bytes, or plain packets counted
    outer_proto: int
    header: bytes
    area: bytes = b""  # the stages' bytes

    @property
    def plain(self) -> bool:
        return bool(self.flags & FLAG_PLAIN)


@dataclass(frozen=True)
class ValueLayout:
    """``struct sfc_value`` of a build with ``capacity`` header bytes and ``area``
    bytes of the stages' own (``__u8 area[]`` behind ``hdr[]``)."""

    capacity: int
    area: int = 0

    @classmethod
    def of_size(cls, size: int) -> "ValueLayout":
        """The layout of a map value of ``size`` bytes (sizeof(struct sfc_value)): a
        narrow entry is at most 4 + NARROW_MAX bytes, a wide one is larger."""
        if size <= _NARROW.size + NARROW_MAX:
            return cls(size - _NARROW.size)
        return cls(size - _WIDE.size - _PROTO.size)

    @property
    def wide(self) -> bool:
        return self.capacity > NARROW_MAX

    @property
    def head_size(self) -> int:
        return _WIDE.size + _PROTO.size if self.wide else _NARROW.size

    @property
    def size(self) -> int:
        return (self.head_size + self.capacity + self.area + 3) // 4 * 4

    @property
    def area_offset(self) -> int:
        """Where the stages' bytes start in the entry."""
        return self.head_size + self.capacity

    def pack(self, flags: int, header: bytes = b"", outer_proto: int = 0,
             length: int | None = None, area: bytes = b"") -> bytes:
        """Entry bytes; ``length`` defaults to len(header) (a plain marker gives its count)."""
        if len(header) > self.capacity:
            raise ValueError(f"header of {len(header)} bytes exceeds capacity {self.capacity}")
        length = len(header) if length is None else length
        if self.wide:
            head = _WIDE.pack(flags, 0, length, 0) + _PROTO.pack(outer_proto)
        else:
            head = _NARROW.pack(flags, length, outer_proto)
        entry = (head + header).ljust(self.area_offset, b"\x00") + area
        return entry.ljust(self.size, b"\x00")

    def unpack(self, raw: bytes) -> Entry:
        if self.wide:
            flags, _, length, _ = _WIDE.unpack_from(raw)
            (proto,) = _PROTO.unpack_from(raw, _WIDE.size)
        else:
            flags, length, proto = _NARROW.unpack_from(raw)
        header = b"" if flags & FLAG_PLAIN else raw[self.head_size:self.head_size + length]
        return Entry(flags, length, proto, header,
                     raw[self.area_offset:self.area_offset + self.area])

    def plain_marker(self, count: int = 1) -> bytes:
        return self.pack(FLAG_PLAIN, length=count)

    def static(self, header: bytes | None, ethertype: int) -> bytes:
        """The sfc_static entry of a static proxy: ``header`` set at runtime
        (b"": none, frames pass as not_configured), or None: all zero, the
        build's default header applies."""
        if header is None:
            return bytes(self.size)
        return self.pack(FLAG_SET, header, ethertype if header else 0)


def static_value(header: bytes | None, ethertype: int, value_size: int) -> bytes:
    """The struct sfc_value for sfc_static[0] of a map whose values are
    ``value_size`` bytes: None = back to the build's header (flags 0), b"" = none
    (egress passes frames as not_configured). A header beyond the entry's capacity
    is a usage error (``sfcframe set --static-header``)."""
    layout = ValueLayout.of_size(value_size)
    if header is not None and len(header) > layout.capacity:
        raise UsageError(f"static header of {len(header)} bytes does not fit the entry")
    return layout.static(header, ethertype)
