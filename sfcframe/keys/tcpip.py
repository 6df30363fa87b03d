"""The user-mode key: immutable IP and TCP header fields.

A user-space VNF keeps addresses, ports, sequence and acknowledgement
numbers, the IP identification, the IPv6 flow label, the TCP window, flags
and options of the packets it forwards; it may change TTL / hop limit,
lengths, checksums and the DSCP/ECN bits (IPv4 TOS, IPv6 traffic class, the
TCP ECN flags), which are therefore never part of the key. The whole key is
stored in the map, so two keys with the same hash never mix.

The parameter ``family`` says which inner packets get a key:

``ipv4`` (default): IPv4/TCP, 24 bytes
    source and destination address, ports, sequence and acknowledgement
    numbers, IP id, window. IPv4 options are skipped; a non-first fragment
    is outside the key (``no_key``).

``ipv6``: IPv6/TCP, 60 bytes
    source and destination address (16 bytes each), ports, sequence and
    acknowledgement numbers, TSval and TSecr of the TCP timestamp option
    (zeros without one), ``label`` (the first IPv6 word with the traffic
    class masked: version 6 and the 20-bit flow label; IPv6 has no IP id),
    window, and ``doff_flags`` (TCP data offset and the flags URG ACK PSH
    RST SYN FIN; reserved bits, AE, CWR and ECE masked), in that order, no
    padding (``doff_flags`` takes the two bytes alignment would otherwise
    waste, and tells a FIN or RST from an ACK with the same numbers, and a
    packet without timestamps from one with TSval and TSecr 0). The kernel
    charges a hash-map element its key rounded up to 8 bytes: 64 here against
    24, 40 bytes more per entry. Never hop limit, payload length, checksum, traffic class. Only
    TCP directly behind the fixed IPv6 header is keyed: a packet whose next
    header is anything else (an extension header, a fragment header, UDP,
    ICMPv6) is outside the key (``no_key``).

``any``: both, in the IPv6 layout
    IPv4 addresses as IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``), and
    ``label`` holding version 4 and the IP id (``0x4000`` above the 16-bit
    id), so the version nibble keeps the two families apart; IPv4 packets get
    their timestamps and ``doff_flags`` too.

The timestamp option is found by one bounded scan of the option bytes
(``doff * 4 - 20``, at most 40) in order: kind 0 (end of list) ends the scan,
kind 1 (no-operation) is one byte, every other option is kind, length, data.
The first option with kind 8 and length 10 gives TSval and TSecr (a kind 8
of another length is skipped like any option). An option without room for
its length byte, with a length below 2, or running past the end of the
options ends the scan: TSval and TSecr then stay zero (a timestamp option
before it has already ended the scan). The packet is keyed either way; a
bad option never makes it ``malformed``.

Without an IP id, a TCP retransmission sent within the same millisecond as the
original (Linux's TSval clock) carries the original's key: if the original is
still between ingress and egress, the retransmission is a counted ``collision``
and dropped while the original goes through (BENCHMARKS.md, collisions over
IPv6: none with TC ingress, 1.3 per million with native veth XDP ingress,
whose ring drops make TCP retransmit a lot; the IPv4 key, with its IP id, none).

The option bytes are read with one bounded copy to the stack (the hook's load
helper, so they may sit outside the linear area) and scanned with constant
indices (an unrolled loop over the 40 byte positions): the verifier sees no
variable offset (about 8,000 instructions processed for an ingress program).

Checks, in order, for an IPv6 packet (C and :meth:`TcpIpKey.reference_key`):
fixed header present and version 6, else ``malformed``; 40 + payload length
within the packet, else ``malformed``; next header TCP, else ``no_key``; the
fixed TCP header present, data offset at least 5 and the TCP header within
the payload length, else ``malformed``.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from sfcframe.params import Param
from sfcframe.plugin import KeyPlugin

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_TCP = 6
IP_OFFSET_MASK = 0x1FFF
KEY_FIELDS = ("saddr", "daddr", "sport", "dport", "seq", "ack_seq", "ip_id", "window")
KEY6_FIELDS = ("saddr", "daddr", "sport", "dport", "seq", "ack_seq", "tsval", "tsecr", "label",
               "window", "doff_flags")
#: struct sfc_key per family, network byte order
KEY4_FORMAT = "!4s4sHHIIHH"
KEY6_FORMAT = "!16s16sHHIIIIIHH"
KEY_SIZES = {"ipv4": struct.calcsize(KEY4_FORMAT), "ipv6": struct.calcsize(KEY6_FORMAT),
             "any": struct.calcsize(KEY6_FORMAT)}
FAMILY_ETHERTYPES = {"ipv4": (ETH_P_IP,), "ipv6": (ETH_P_IPV6,), "any": (ETH_P_IP, ETH_P_IPV6)}

LABEL_MASK = 0xF00FFFFF  # version and flow label of the first IPv6 word
LABEL_IPV4 = 0x40000000  # version 4 above the IP id (family any)
DOFF_FLAGS_MASK = 0xF03F  # data offset, URG ACK PSH RST SYN FIN
IPV4_MAPPED = bytes(10) + b"\xff\xff"
OPT_MAX = 40
OPT_EOL, OPT_NOP, OPT_TS, OPT_TS_LEN = 0, 1, 8, 10


def tcp_timestamps(options: bytes) -> tuple[int, int]:
    """(TSval, TSecr) of the first timestamp option in ``options`` (the bytes
    behind the fixed TCP header), or (0, 0): the scan the C code makes."""
    off = 0
    for _ in range(OPT_MAX):
        if off >= len(options) or options[off] == OPT_EOL:
            break
        if options[off] == OPT_NOP:
            off += 1
            continue
        if off + 2 > len(options):
            break
        kind, length = options[off], options[off + 1]
        if length < 2 or off + length > len(options):
            break
        if kind == OPT_TS and length == OPT_TS_LEN:
            return struct.unpack_from("!II", options, off + 2)
        off += length
    return 0, 0


def _ipv4(l3: bytes) -> tuple[str, int, int]:
    """(outcome, header length, total length) of the IPv4 header checks."""
    if len(l3) < 20:
        return "malformed", 0, 0
    version, ihl = l3[0] >> 4, l3[0] & 0x0F
    if version != 4 or ihl < 5:
        return "malformed", 0, 0
    ihl_len = ihl * 4
    tot_len = struct.unpack_from("!H", l3, 2)[0]
    if tot_len < ihl_len or tot_len > len(l3):
        return "malformed", 0, 0
    frag = struct.unpack_from("!H", l3, 6)[0]
    if l3[9] != IPPROTO_TCP or frag & IP_OFFSET_MASK:
        return "no_key", 0, 0
    return "ok", ihl_len, tot_len


def _tcp(tcp: bytes, l4_len: int) -> tuple[str, bytes, bytes]:
    """(outcome, ports, seq, ack, TSval, TSecr, and window, doff_flags): the TCP
    fields of the IPv6 layout, which the label word separates, for the segment
    ``tcp`` whose length by the IP header is ``l4_len``."""
    if len(tcp) < 20:
        return "malformed", b"", b""
    doff = tcp[12] >> 4
    if doff < 5 or doff * 4 > l4_len:
        return "malformed", b"", b""
    tsval, tsecr = tcp_timestamps(tcp[20:doff * 4])
    doff_flags = struct.unpack_from("!H", tcp, 12)[0] & DOFF_FLAGS_MASK
    return "ok", tcp[0:12] + struct.pack("!II", tsval, tsecr), tcp[14:16] + struct.pack(
        "!H", doff_flags)


def _family(values: Mapping[str, Any]) -> str:
    """The family parameter; values from before it existed (``{}``) mean ipv4."""
    return values.get("family", "ipv4")


class TcpIpKey(KeyPlugin):
    contract = 2
    description = (
        "immutable IP+TCP fields (addresses, ports, seq, ack, window; IPv4: IP id; "
        "IPv6: flow label, TCP timestamps): for user-space VNFs that do not rewrite them"
    )
    template = "tcpip.c.j2"
    params = (
        Param(
            "family",
            "choice",
            "ipv4",
            "inner packets keyed: ipv4 (IPv4/TCP, 24-byte key), ipv6 (IPv6/TCP, 60 bytes) "
            "or any (both, 60 bytes: IPv4 addresses IPv4-mapped)",
            choices=("ipv4", "ipv6", "any"),
            quiet=True,
        ),
    )

    def inner_ethertypes(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        return FAMILY_ETHERTYPES[_family(values)]

    def conformance_params(self) -> list[dict[str, Any]]:
        """Every family: ipv4, ipv6, any."""
        return [{"family": family} for family in FAMILY_ETHERTYPES]

    def reference_key(self, l3: bytes, ethertype: int,
                      values: Mapping[str, Any]) -> tuple[str, bytes | None]:
        family = _family(values)
        if ethertype not in FAMILY_ETHERTYPES[family]:
            return "no_key", None
        if family == "ipv4":
            return self._key4(l3)
        if ethertype == ETH_P_IPV6:
            return self._key6(l3)
        return self._key4_mapped(l3)

    @staticmethod
    def _key4(l3: bytes) -> tuple[str, bytes | None]:
        outcome, ihl_len, tot_len = _ipv4(l3)
        if outcome != "ok":
            return outcome, None
        tcp = l3[ihl_len:]
        if len(tcp) < 20:
            return "malformed", None
        doff = tcp[12] >> 4
        if doff < 5 or ihl_len + doff * 4 > tot_len:
            return "malformed", None
        key = l3[12:16] + l3[16:20] + tcp[0:2] + tcp[2:4] + tcp[4:8] + tcp[8:12] + l3[4:6] + tcp[14:16]
        return "ok", key

    @staticmethod
    def _key6(l3: bytes) -> tuple[str, bytes | None]:
        if len(l3) < 40 or l3[0] >> 4 != 6:
            return "malformed", None
        payload_len = struct.unpack_from("!H", l3, 4)[0]
        if 40 + payload_len > len(l3):
            return "malformed", None
        if l3[6] != IPPROTO_TCP:
            return "no_key", None
        outcome, numbers, tail = _tcp(l3[40:], payload_len)
        if outcome != "ok":
            return outcome, None
        label = struct.unpack_from("!I", l3, 0)[0] & LABEL_MASK
        return "ok", l3[8:24] + l3[24:40] + numbers + struct.pack("!I", label) + tail

    @staticmethod
    def _key4_mapped(l3: bytes) -> tuple[str, bytes | None]:
        outcome, ihl_len, tot_len = _ipv4(l3)
        if outcome != "ok":
            return outcome, None
        outcome, numbers, tail = _tcp(l3[ihl_len:], tot_len - ihl_len)
        if outcome != "ok":
            return outcome, None
        label = LABEL_IPV4 | struct.unpack_from("!H", l3, 4)[0]
        return "ok", (IPV4_MAPPED + l3[12:16] + IPV4_MAPPED + l3[16:20] + numbers
                      + struct.pack("!I", label) + tail)

    def describe_key(self, key: bytes, values: Mapping[str, Any]) -> Mapping[str, Any]:
        if _family(values) == "ipv4":
            return dict(zip(KEY_FIELDS, struct.unpack(KEY4_FORMAT, key)))
        import ipaddress

        fields = dict(zip(KEY6_FIELDS, struct.unpack(KEY6_FORMAT, key)))
        for name in ("saddr", "daddr"):
            address = ipaddress.IPv6Address(fields[name])
            fields[name] = str(address.ipv4_mapped or address)
        label = fields["label"]
        if label >> 28 == 4:
            fields["ip_id"] = label & 0xFFFF
        else:
            fields["flow_label"] = label & 0xFFFFF
        return fields
