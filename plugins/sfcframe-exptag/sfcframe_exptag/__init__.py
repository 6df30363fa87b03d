"""exptag: a 4-byte tag after the Ethernet header, ethertype 0x88B5.

0x88B5 is one of the two IEEE 802 "local experimental" ethertypes, free for
anyone to use on a private network. On the wire::

    | dst MAC (6) | src MAC (6) | 0x88B5 (2) | tag (2) | inner_proto (2) | inner packet ...

    struct exptag_hdr { __be16 tag; __be16 inner_proto; };

``inner_proto`` is the ethertype of the inner packet. Ingress checks, in this
order (the C in ``exptag.c.j2`` does the same, and :meth:`reference_ingress`
is the Python reference of it):

1. fewer than 4 bytes after the Ethernet header     -> malformed
2. inner_proto < 0x0600 (an 802.3 length, not an
   ethertype: no protocol can be named by it)       -> malformed
3. inner_proto == 0x0800 (IPv4)                     -> go on: cache the 4 bytes, strip them
4. any other ethertype (0x86DD IPv6 included)       -> unsupported_inner

Egress puts the 4 bytes back with ``bump`` (parameter, 0..255, default 0)
added to the tag modulo 65536: a one-line update rule, there to show where
one goes.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from sfcframe.params import Param
from sfcframe.plugin import EncapParse, EncapPlugin

__version__ = "0.1.0"

ETH_P_EXPTAG = 0x88B5  # IEEE 802 local experimental ethertype 1
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_802_3_MIN = 0x0600  # smaller values are 802.3 lengths, not ethertypes
EXPTAG_LEN = 4
HEADER = struct.Struct("!HH")  # tag, inner_proto


def exptag_header(tag: int, inner_proto: int = ETH_P_IP) -> bytes:
    """The 4 header bytes for ``tag`` and ``inner_proto``."""
    return HEADER.pack(tag & 0xFFFF, inner_proto & 0xFFFF)


class ExpTagEncap(EncapPlugin):
    contract = 2
    description = (
        "example: 4-byte tag under the local experimental ethertype 0x88B5; "
        "restores it with the tag bumped"
    )
    template = "exptag.c.j2"
    ethertype = ETH_P_EXPTAG
    params = (
        Param("bump", "int", 0, "added to the tag at egress, modulo 65536", 0, 255),
    )

    # ---- sizes the core needs ----------------------------------------
    def header_capacity(self, values: Mapping[str, Any]) -> int:
        return EXPTAG_LEN

    def max_strip(self, values: Mapping[str, Any]) -> int:
        return EXPTAG_LEN

    def conformance_params(self) -> list[dict[str, Any]]:
        """The conformance kit builds exptag with ``bump`` 255: every restored tag
        differs from the cached one, and most wrap around 65536."""
        return [{"bump": 255}]

    # ---- test oracle -------------------------------------------------
    def reference_ingress(self, l2_payload: bytes, values: Mapping[str, Any],
                          ethertype: int | None = None) -> EncapParse:
        if len(l2_payload) < EXPTAG_LEN:
            return EncapParse("malformed")
        _tag, inner_proto = HEADER.unpack_from(l2_payload)
        if inner_proto < ETH_P_802_3_MIN:
            return EncapParse("malformed")
        if inner_proto != ETH_P_IP:
            return EncapParse("unsupported_inner")
        return EncapParse(
            "ok",
            strip_len=EXPTAG_LEN,
            inner_ethertype=ETH_P_IP,
            cached=bytes(l2_payload[:EXPTAG_LEN]),
        )

    def reference_restore(self, cached: bytes, values: Mapping[str, Any],
                          inner: bytes = b"") -> tuple[str, bytes]:
        tag, inner_proto = HEADER.unpack(cached)
        return "ok", exptag_header(tag + values["bump"], inner_proto)

    def example_header(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP) -> bytes:
        return exptag_header(0x1234)

    def header_strategy(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP):
        from hypothesis import strategies as st

        return st.integers(0, 0xFFFF).map(exptag_header)
