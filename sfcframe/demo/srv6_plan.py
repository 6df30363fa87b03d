"""The SRv6 kernel-peer testbed's plan: addresses, SIDs and what the checker expects.

The kernel's own SRv6 is the SFF and the receiving side; the VNF host in the
middle owns ``SID_PROXY``::

    snd ──eth0│to-snd1── sff ──down0│in0── vnf ──out0│eth0── dec ──to-rcv│eth0── rcv
        10.77.11.0/24           10.77.1.0/24         10.77.2.0/24         10.77.3.0/24
        fd77:11::/64            fc00:1::/64          fc00:2::/64          fd77:3::/64
        (.2 / .1)               (.1 / .2)            (.1 / .2)            (.1 / .2)

- **sff** encapsulates (H.Encaps) every packet to the receiver:
  ``ip route add 10.77.3.0/24 encap seg6 mode encap segs SID_PROXY,SID_DX4 dev down0``
  (and ``fd77:3::/64 ... segs SID_PROXY,SID_DT6`` for IPv6), source ``TUNSRC``
  (``ip sr tunsrc set``), optionally ``hmac HMAC_KEYID``. It reaches the
  VNF host's locator ``fc00:a::/64`` through ``fc00:1::2``.
- **vnf** owns ``SID_PROXY``: either the kernel's ``seg6local action End`` as a
  stand-in (``sf="end"``), or nothing SRv6 at all (``sf="proxy"``): IPv4/IPv6
  addressing, neighbour discovery and forwarding of the inner packets from
  ``in0`` to ``out0``, where sfcframe's srv6 proxy goes.
- **dec** owns ``SID_DX4`` (``End.DX4 nh4 10.77.3.2``) and ``SID_DT6``
  (``End.DT6 table 254``) and forwards the decapsulated packet to **rcv**. A
  separate node, because on this kernel End.DT6 without a VRF (table mode)
  cannot deliver locally: the lookup ends in a local route and seg6local drops
  the packet (its ``errors`` counter grows).
- **rcv** is a plain host (iperf3 server).

With IOAM (``Srv6Options.ioam``, :mod:`sfcframe.demo.srv6_ioam`) two IPv6
routers with kernel IOAM sit before and after the VNF host (``IOAM_LINKS``)::

    snd ── sff ──down0│eth0── t1 ──eth1│in0── vnf ──out0│eth0── t2 ──eth1│eth0── dec ── rcv
              10.77.1.0/24      10.77.4.0/24       10.77.2.0/24      10.77.5.0/24
              fc00:1::/64       fc00:4::/64        fc00:2::/64       fc00:5::/64
              (.1 / .2)         (.1 / .2)          (.1 / .2)         (.1 / .2)

The SFF's tunnel source and the VNF host's ``out0`` keep their addresses; the
VNF host's next hop for the inner packets is t2, and t1 / t2 forward the outer
IPv6 packets by the locators (t1: ``fc00:a::/64`` to the VNF host, t2:
``fc00:b::/64`` to the decapsulating node).

Hop limit at the checker (dec's ``eth0``, TC ingress): the SFF encapsulates on
route *input* (seg6 is an input-redirect lwtunnel for forwarded packets) with
hop limit 64, then forwards the IPv6 packet (63 on the wire to the VNF host);
the kernel's End forwards once more (62). A proxy that decrements once from the
cached 63 must produce the same 62. The inner packet's TTL / hop limit is not
decremented by the SFF (it is encapsulated before it would be forwarded). With
IOAM, t1 and t2 forward too: 60 at the checker (t1 receives 63, the VNF host 62,
t2 61).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sfcframe.demo.srv6_ioam import IoamCheck, IoamOptions, check_plan
from sfcframe.errors import UsageError

#: the VNF host's SID (kernel End stand-in, or the proxy's ``sid``) and its locator
SID_PROXY = "fc00:a::1"
LOCATOR_PROXY = "fc00:a::/64"
#: the decapsulating node's SIDs: End.DX4 (inner IPv4) and End.DT6 (inner IPv6)
SID_DX4 = "fc00:b::4"
SID_DT6 = "fc00:b::6"
LOCATOR_EGRESS = "fc00:b::/64"
#: outer source address of the SFF's H.Encaps (ip sr tunsrc)
TUNSRC = "fc00:1::1"
#: traffic end points
SND4, SND6 = "10.77.11.2", "fd77:11::2"
RCV4, RCV6 = "10.77.3.2", "fd77:3::2"
SND4_NET, SND6_NET = "10.77.11.0/24", "fd77:11::/64"
RCV4_NET, RCV6_NET = "10.77.3.0/24", "fd77:3::/64"
#: the HMAC the SFF adds and the decapsulating node requires (a test secret, inside namespaces only)
HMAC_KEYID = 7
HMAC_ALGO = "sha256"
HMAC_SECRET = "sfcframe-srv6-testbed"
#: hop limit the kernel's H.Encaps writes (the route has no hoplimit metric)
ENCAP_HOP_LIMIT = 64
#: IPv6 forwarding hops between H.Encaps and the checker: the SFF itself, then the VNF host
FORWARDING_HOPS = 2
#: with IOAM, t1 and t2 forward too
IOAM_EXTRA_HOPS = 2
#: the per-chain number the per-packet value mixes in (one chain)
CHAIN = 1

INNER = ("ipv4", "ipv6")
SF_MODES = ("end", "proxy")

#: (a role, a interface, b role, b interface, IPv4 /24 prefix, IPv6 /64 prefix, a host, b host)
LINKS = (
    ("snd", "eth0", "sff", "to-snd1", "10.77.11", "fd77:11::", 2, 1),
    ("sff", "down0", "vnf", "in0", "10.77.1", "fc00:1::", 1, 2),
    ("vnf", "out0", "dec", "eth0", "10.77.2", "fc00:2::", 1, 2),
    ("dec", "to-rcv", "rcv", "eth0", "10.77.3", "fd77:3::", 1, 2),
)


#: with IOAM: kernel IOAM routers t1 (between the SFF and the VNF host) and t2
#: (between the VNF host and the decapsulating node)
IOAM_LINKS = (
    LINKS[0],
    ("sff", "down0", "t1", "eth0", "10.77.1", "fc00:1::", 1, 2),
    ("t1", "eth1", "vnf", "in0", "10.77.4", "fc00:4::", 1, 2),
    ("vnf", "out0", "t2", "eth0", "10.77.2", "fc00:2::", 1, 2),
    ("t2", "eth1", "dec", "eth0", "10.77.5", "fc00:5::", 1, 2),
    LINKS[3],
)


def link_addr(role: str, ifname: str, family: int, links: tuple = LINKS) -> str:
    """The address (no prefix length) of role's interface ifname in family 4 or 6."""
    for a, a_if, b, b_if, net4, net6, a_host, b_host in links:
        for r, i, host in ((a, a_if, a_host), (b, b_if, b_host)):
            if (r, i) == (role, ifname):
                return f"{net4}.{host}" if family == 4 else f"{net6}{host}"
    raise KeyError(f"{role}:{ifname}")


@dataclass(frozen=True)
class Srv6Options:
    """What one SRv6 testbed run uses.

    ``inner``: ``ipv4`` (traffic to RCV4, decapsulated by End.DX4) or ``ipv6``
    (RCV6, End.DT6). ``hmac``: the SFF adds an HMAC TLV, the decapsulating node
    requires it (``seg6_require_hmac=1``). ``sf``: ``end`` (the kernel's End on
    the VNF host) or ``proxy`` (no SRv6 on the VNF host; sfcframe's proxy goes on
    ``in0``/``out0``). ``hop_limit``: what the checker expects (None:
    :func:`expected_hop_limit`). ``corrupt``: tests only, the stamper flips a bit
    of an HMAC-covered segment. ``nat``: the VNF rewrites the inner packet's
    addresses and ports, so the per-packet value is made of the rest.
    """

    inner: str = "ipv4"
    hmac: bool = False
    sf: str = "end"
    hop_limit: int | None = None
    corrupt: bool = False
    #: the VNF rewrites addresses and ports (NAT): the per-packet value leaves them out
    nat: bool = False
    #: IOAM: kernel IOAM routers around the VNF host, a pre-allocated trace inserted by
    #: the stamper and checked by the checker (None: the plain testbed)
    ioam: IoamOptions | None = None

    def __post_init__(self) -> None:
        if self.inner not in INNER:
            raise UsageError(f"--inner must be one of {', '.join(INNER)}, not {self.inner!r}")
        if self.sf not in SF_MODES:
            raise UsageError(f"--sf must be one of {', '.join(SF_MODES)}, not {self.sf!r}")
        if self.hop_limit is not None and not 0 <= self.hop_limit <= 255:
            raise UsageError("--hop-limit must be within 0..255")
        if self.ioam is not None and self.ioam.slots < len(self.ioam.fillers(self.sf)):
            raise UsageError(f"IOAM: {self.ioam.slots} slots for {len(self.ioam.fillers(self.sf))} "
                             "nodes that write node data before the checker")

    @property
    def egress_sid(self) -> str:
        return SID_DX4 if self.inner == "ipv4" else SID_DT6

    @property
    def segments(self) -> tuple[str, str]:
        """The SRH's segment list in wire order: [0] is the last segment."""
        return (self.egress_sid, SID_PROXY)

    @property
    def receiver(self) -> str:
        return RCV4 if self.inner == "ipv4" else RCV6

    @property
    def sender(self) -> str:
        return SND4 if self.inner == "ipv4" else SND6

    @property
    def expected_hop_limit(self) -> int:
        if self.hop_limit is not None:
            return self.hop_limit
        return expected_hop_limit() - (IOAM_EXTRA_HOPS if self.ioam else 0)

    @property
    def links(self) -> tuple:
        """The testbed's veth links (with IOAM: through t1 and t2)."""
        return IOAM_LINKS if self.ioam else LINKS

    @property
    def middle(self) -> tuple[str, ...]:
        """The routers between the SFF and the decapsulating node, in path order."""
        return ("t1", "vnf", "t2") if self.ioam else ("vnf",)

    @property
    def ioam_check(self) -> IoamCheck | None:
        """What the checker's IOAM part expects (None without IOAM): t1 receives the
        SFF's forwarded hop limit."""
        if self.ioam is None:
            return None
        return check_plan(self.ioam, self.sf, ENCAP_HOP_LIMIT - 1)

    def describe(self) -> str:
        return (f"inner {self.inner} ({'End.DX4' if self.inner == 'ipv4' else 'End.DT6'}), "
                f"{'HMAC key ' + str(HMAC_KEYID) if self.hmac else 'no HMAC'}, SID_PROXY "
                f"{'owned by the kernel End stand-in' if self.sf == 'end' else 'for the proxy'}, "
                f"checker expects hop limit {self.expected_hop_limit}"
                + (", stamper corrupts a segment" if self.corrupt else "")
                + (f"; {self.ioam.describe(self.sf)}" if self.ioam else ""))


def expected_hop_limit() -> int:
    """Outer hop limit at the decapsulating node: H.Encaps' 64 minus the SFF's and the
    VNF host's forwarding (kernel End, or a proxy that decrements once)."""
    return ENCAP_HOP_LIMIT - FORWARDING_HOPS


def words(address: str) -> list[int]:
    """An IPv4 address as one host-order word, an IPv6 address as four."""
    packed = ipaddress.ip_address(address).packed
    return [int.from_bytes(packed[i:i + 4], "big") for i in range(0, len(packed), 4)]
