"""The user-mode key: immutable IPv4 and TCP header fields.

A user-space VNF keeps addresses, ports, sequence and acknowledgement
numbers, the IP identification and the TCP window of the packets it
forwards; it may change TTL, total length and checksums, which are
therefore never part of the key. The whole key is stored in the map, so
two keys with the same hash never mix.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from sfcframe.plugin import KeyPlugin

ETH_P_IP = 0x0800
IPPROTO_TCP = 6
IP_OFFSET_MASK = 0x1FFF
KEY_FIELDS = ("saddr", "daddr", "sport", "dport", "seq", "ack_seq", "ip_id", "window")


class TcpIpKey(KeyPlugin):
    contract = 2
    description = (
        "immutable IPv4+TCP fields (addresses, ports, seq, ack, IP id, window): "
        "for user-space VNFs that do not rewrite them"
    )
    template = "tcpip.c.j2"
    params = ()

    def reference_key(self, l3: bytes, ethertype: int,
                      values: Mapping[str, Any]) -> tuple[str, bytes | None]:
        if ethertype != ETH_P_IP:
            return "no_key", None
        if len(l3) < 20:
            return "malformed", None
        version, ihl = l3[0] >> 4, l3[0] & 0x0F
        if version != 4 or ihl < 5:
            return "malformed", None
        ihl_len = ihl * 4
        tot_len = struct.unpack_from("!H", l3, 2)[0]
        if tot_len < ihl_len or tot_len > len(l3):
            return "malformed", None
        frag = struct.unpack_from("!H", l3, 6)[0]
        if l3[9] != IPPROTO_TCP or frag & IP_OFFSET_MASK:
            return "no_key", None
        tcp = l3[ihl_len:]
        if len(tcp) < 20:
            return "malformed", None
        doff = tcp[12] >> 4
        if doff < 5 or ihl_len + doff * 4 > tot_len:
            return "malformed", None
        key = l3[12:16] + l3[16:20] + tcp[0:2] + tcp[2:4] + tcp[4:8] + tcp[8:12] + l3[4:6] + tcp[14:16]
        return "ok", key

    def describe_key(self, key: bytes, values: Mapping[str, Any]) -> Mapping[str, Any]:
        saddr, daddr, sport, dport, seq, ack, ip_id, window = struct.unpack("!4s4sHHIIHH", key)
        return dict(zip(KEY_FIELDS, (saddr, daddr, sport, dport, seq, ack, ip_id, window)))
