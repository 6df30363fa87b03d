"""Verification of proof of transit at the end of a chain, from captured packets.

Each frame's POT option is found where the ``ioam`` carriers put it: IOAM
option 49 of IOAM Option-Type 2 in an IPv6 Hop-by-Hop header (RFC 9486), or
the IOAM header of Option-Type 2 behind NSH (RFC 9452). Its CML must equal
SECRET + RND mod p (:meth:`Profile.verifies`). Every frame lands in exactly one
of :data:`OUTCOMES`; an RND seen before in the same capture is ``replayed``
whatever its CML (RNDs are drawn per packet: a repeat means a copied packet).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from sfcframe_pot import option
from sfcframe_pot.profile import Profile

OUTCOMES = ("verified", "failed", "replayed", "other_profile", "other_namespace",
            "unknown_type", "no_pot", "malformed")

ETH_P_IPV6 = 0x86DD
ETH_P_NSH = 0x894F
ETH_P_8021Q = 0x8100
NH_HOPOPTS = 0
OPT_PAD1 = 0
OPT_IOAM = 0x31
NSH_NP_IOAM = 0x6
#: pcap link types read: Ethernet, Linux cooked v1 and v2, raw IP
LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_SLL, LINKTYPE_SLL2 = 1, 101, 113, 276


class Malformed(ValueError):
    """A frame whose headers end before they say they do."""


def pot_in_ipv6(ip: bytes) -> bytes | None:
    """The POT option data in an IPv6 packet's Hop-by-Hop header, or None."""
    if len(ip) < 40 or ip[0] >> 4 != 6:
        raise Malformed("IPv6 header cut short")
    if ip[6] != NH_HOPOPTS:
        return None
    if len(ip) < 48:
        raise Malformed("Hop-by-Hop header cut short")
    end = 40 + (ip[41] + 1) * 8
    if end > len(ip):
        raise Malformed("Hop-by-Hop header longer than the packet")
    at = 42
    while at < end:
        if ip[at] == OPT_PAD1:
            at += 1
            continue
        if at + 2 > end or at + 2 + ip[at + 1] > end:
            raise Malformed("option longer than its Hop-by-Hop header")
        kind, length = ip[at], ip[at + 1]
        if kind == OPT_IOAM and length >= 2 and ip[at + 3] == option.IOAM_POT:
            return ip[at + 4:at + 2 + length]
        at += 2 + length
    return None


def pot_in_nsh(nsh: bytes) -> bytes | None:
    """The POT option data of the IOAM header behind NSH, or None."""
    if len(nsh) < 8:
        raise Malformed("NSH cut short")
    if nsh[3] != NSH_NP_IOAM:
        return None
    at = (nsh[1] & 0x3F) * 4
    if len(nsh) < at + 4:
        raise Malformed("IOAM header cut short")
    end = at + nsh[at + 1] * 4
    if end > len(nsh):
        raise Malformed("IOAM header longer than the packet")
    return nsh[at + 4:end] if nsh[at] == option.IOAM_POT else None


def pot_in_frame(frame: bytes, linktype: int = LINKTYPE_ETHERNET) -> bytes | None:
    """The POT option data of a captured frame (None: the frame carries none)."""
    if linktype == LINKTYPE_RAW:
        return pot_in_ipv6(frame) if frame[:1] and frame[0] >> 4 == 6 else None
    if linktype in (LINKTYPE_SLL, LINKTYPE_SLL2):
        at, size = (14, 16) if linktype == LINKTYPE_SLL else (0, 20)
        if len(frame) < size:
            raise Malformed("Linux cooked header cut short")
        proto, rest = struct.unpack_from("!H", frame, at)[0], frame[size:]
    elif linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            raise Malformed("Ethernet header cut short")
        proto, rest = struct.unpack_from("!H", frame, 12)[0], frame[14:]
        if proto == ETH_P_8021Q and len(rest) >= 4:
            proto, rest = struct.unpack_from("!H", rest, 2)[0], rest[4:]
    else:
        raise ValueError(f"pcap link type {linktype} is not read (Ethernet, Linux cooked "
                         f"or raw IP captures are)")
    if proto == ETH_P_IPV6:
        return pot_in_ipv6(rest)
    if proto == ETH_P_NSH:
        return pot_in_nsh(rest)
    return None


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    #: the first failures: (frame number from 1, outcome, RND, CML)
    failures: list[tuple[int, str, int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Verified packets and nothing that failed or was replayed."""
        return self.counts["verified"] > 0 and not (self.counts["failed"]
                                                    or self.counts["replayed"])

    def to_json(self) -> dict:
        return {"ok": self.ok, "counts": dict(self.counts),
                "failures": [{"frame": n, "outcome": o, "rnd": r, "cml": c}
                             for n, o, r, c in self.failures]}


def judge(data: bytes | None, profile: Profile, seen: set[int]) -> tuple[str, int, int]:
    """(outcome, RND, CML) of one packet's POT option data."""
    if data is None:
        return "no_pot", 0, 0
    if len(data) < option.LENGTH:
        return "malformed", 0, 0
    pot = option.PotOption.parse(data)
    if pot.namespace != profile.namespace:
        return "other_namespace", pot.rnd, pot.cml
    if pot.pot_type != option.POT_TYPE_0:
        return "unknown_type", pot.rnd, pot.cml
    if pot.profile != profile.index:
        return "other_profile", pot.rnd, pot.cml
    if pot.rnd in seen:
        return "replayed", pot.rnd, pot.cml
    seen.add(pot.rnd)
    return ("verified" if profile.verifies(pot.cml, pot.rnd) else "failed"), pot.rnd, pot.cml


def verify_frames(frames: Iterable[bytes], profile: Profile, linktype: int = LINKTYPE_ETHERNET,
                  keep: int = 10) -> Report:
    report, seen = Report(), set()
    for number, frame in enumerate(frames, 1):
        try:
            outcome, rnd, cml = judge(pot_in_frame(frame, linktype), profile, seen)
        except Malformed:
            outcome, rnd, cml = "malformed", 0, 0
        report.counts[outcome] += 1
        if outcome in ("failed", "replayed", "malformed") and len(report.failures) < keep:
            report.failures.append((number, outcome, rnd, cml))
    return report


def verify_pcap(path: Path, profile: Profile, keep: int = 10) -> Report:
    """Every frame of a pcap file (scapy reads it; its link type is honoured)."""
    from scapy.utils import RawPcapReader

    try:
        reader = RawPcapReader(str(path))
    except Exception as exc:  # OSError, or scapy's Scapy_Exception for a bad magic
        raise ValueError(f"{path}: not a readable pcap file ({exc})") from None
    with reader:
        return verify_frames((frame for frame, _meta in reader), profile, reader.linktype, keep)
