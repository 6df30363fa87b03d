"""The srv6 carrier ``apn``: an IPv6 option or an SRH TLV in the cached outer headers.

A stage that rides it names, in ``kind``, where to look and the code point:
``kind = where << 8 | type`` with ``where`` one of :data:`IN_HBH` (an option of
the Hop-by-Hop header), :data:`IN_DOH` (an option of the Destination Options
header in front of the SRH) or :data:`IN_SRH` (a TLV of the SRH). Options and
SRH TLVs share their layout (type, length, data; type 0 is a one-byte Pad1), so
one scan serves all three; like the C (``carrier_apn_find()`` in ``srv6.c.j2``)
it looks through the first :data:`SCANNED` of them. The data found is what
follows the type and length bytes.

This module is the Python twin of that C and builds test headers that carry
such data (:func:`embed`).
"""

from __future__ import annotations

from sfcframe.encaps.srv6 import headers as h

IN_HBH, IN_DOH, IN_SRH = 0, 1, 2
#: options / TLVs looked through (Pad1 counts)
SCANNED = 8


def layout(header: bytes) -> dict[str, int]:
    """Offsets of the Hop-by-Hop header (``hbh``), the Destination Options header
    before the SRH (``doh``) and the SRH (``srh``) that ``header`` has."""
    out, nh, off = {}, header[6], h.IPV6_LEN
    for i in range(2):
        if i == 0 and nh == h.NH_HOPOPTS:
            out["hbh"] = off
        elif nh == h.NH_DSTOPTS:
            out["doh"] = off
        else:
            break
        if off + 2 > len(header):
            return out
        nh, off = header[off], off + (header[off + 1] + 1) * 8
    if nh == h.NH_ROUTING:
        out["srh"] = off
    return out


def scan(header: bytes, start: int, end: int, kind: int, capacity: int) -> tuple[int, int] | None:
    """(offset, length) of the data of the first option/TLV of type ``kind`` in
    ``header[start:end]``."""
    at, end = start, min(end, len(header))
    for _ in range(SCANNED):
        if at > capacity - 2 or at + 2 > end:
            return None
        if header[at] == h.OPT_PAD1:
            at += 1
            continue
        length = header[at + 1]
        if at + 2 + length > end:
            return None
        if header[at] == kind:
            return at + 2, length
        at += 2 + length
    return None


def find(header: bytes, kind: int, capacity: int) -> tuple[int, int] | None:
    """The data of ``kind`` (where << 8 | code point) in a cached ``header``."""
    where, code = kind >> 8, kind & 0xFF
    at = layout(header)
    if where in (IN_HBH, IN_DOH):
        start = at.get("hbh" if where == IN_HBH else "doh")
        if start is None or start > capacity - 2:
            return None
        return scan(header, start + 2, start + (header[start + 1] + 1) * 8, code, capacity)
    if where == IN_SRH:
        start = at.get("srh")
        if start is None or start > capacity - h.SRH_FIXED:
            return None
        end = start + (header[start + 1] + 1) * 8
        first = start + h.SRH_FIXED + (header[start + 4] + 1) * h.SEGMENT_LEN
        return scan(header, first, end, code, capacity)
    return None


def _split(header: bytes) -> tuple[bytes, bytes | None, bytes | None, bytes]:
    """(IPv6 header, Hop-by-Hop header or None, Destination Options or None, SRH)."""
    at = layout(header)
    ends = sorted(at.values())
    part = {name: header[off:ends[ends.index(off) + 1]] if name != "srh" else header[off:]
            for name, off in at.items()}
    return header[:h.IPV6_LEN], part.get("hbh"), part.get("doh"), part["srh"]


def _with_tlv(srh: bytes, tlv: bytes, max_tlv_bytes: int) -> bytes:
    """``srh`` with ``tlv`` as its first TLV; the former TLVs follow while they fit
    ``max_tlv_bytes``, else they are dropped; padded to a multiple of 8."""
    segments = h.SRH_FIXED + (srh[4] + 1) * h.SEGMENT_LEN
    old = srh[segments:(srh[1] + 1) * 8]
    tlvs = tlv + old
    if len(tlvs + h.pad_to_8(h.SRH_FIXED + len(tlvs))) > max_tlv_bytes:
        tlvs = tlv
    tlvs += h.pad_to_8(h.SRH_FIXED + len(tlvs))
    body = srh[h.SRH_FIXED:segments] + tlvs
    return bytes([srh[0], (h.SRH_FIXED + len(body)) // 8 - 1]) + srh[2:h.SRH_FIXED] + body


def embed(header: bytes, kind: int, body: bytes, max_ext_bytes: int, max_tlv_bytes: int) -> bytes:
    """``header`` (a valid End.AD header) carrying ``body`` as option or TLV ``kind``:
    as the only option of a new Hop-by-Hop / Destination Options header (replacing
    one there, and dropping the other if both would not fit ``max_ext_bytes``), or
    as the SRH's first TLV. Raises ValueError when it cannot fit the build."""
    where, code = kind >> 8, kind & 0xFF
    outer, hbh, doh, srh = _split(header)
    item = bytes([code, len(body)]) + body
    if where == IN_SRH:
        srh = _with_tlv(srh, item, max_tlv_bytes)
        if len(srh) - h.SRH_FIXED - (srh[4] + 1) * h.SEGMENT_LEN > max_tlv_bytes:
            raise ValueError(f"an SRH TLV of {len(item)} bytes does not fit max_tlv_bytes")
    elif where in (IN_HBH, IN_DOH):
        fresh = h.options_header(0, item)  # next header set below
        if where == IN_HBH:
            hbh = fresh
        else:
            doh = fresh
        if len(fresh) > max_ext_bytes:
            raise ValueError(f"an option of {len(item)} bytes does not fit max_ext_bytes")
        if len(fresh) + len((doh if where == IN_HBH else hbh) or b"") > max_ext_bytes:
            if where == IN_HBH:
                doh = None
            else:
                hbh = None
    else:
        raise ValueError(f"apn carrier: kind {kind:#x} names no place (where {where})")
    chain = [(h.NH_HOPOPTS, hbh), (h.NH_DSTOPTS, doh)]
    present = [(nh, ext) for nh, ext in chain if ext is not None]
    nexts = [nh for nh, _ in present[1:]] + [h.NH_ROUTING]
    out = bytearray(outer)
    out[6] = present[0][0] if present else h.NH_ROUTING
    for (nh, ext), following in zip(present, nexts):
        out += bytes([following]) + ext[1:]
    return bytes(out) + srh
