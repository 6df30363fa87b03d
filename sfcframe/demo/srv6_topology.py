"""The SRv6 kernel-peer testbed: the demo's :class:`Topology` with the kernel's
SRv6 as the SFF (H.Encaps) and the decapsulating node (End.DX4 / End.DT6), and
the VNF host in between owning ``SID_PROXY`` (see :mod:`sfcframe.demo.srv6_plan`
for the picture, the addresses and why there is a separate decapsulating node).

How a packet travels, with the kernel End stand-in (``sf="end"``): the sender's
TCP packet reaches the SFF, whose route to the receiver's prefix encapsulates it
(outer IPv6 from ``TUNSRC`` to ``SID_PROXY``, SRH ``[egress SID, SID_PROXY]``,
SL 1) and forwards it to the VNF host (neighbour ``fc00:1::2``); the stamper
writes the per-packet Tag and flow label on the SFF's ``down0``. The VNF host's
``seg6local End`` sets SL 0 and DA the egress SID and forwards it by its IPv6
route for ``fc00:b::/64`` to the decapsulating node, where the checker (TC
ingress on ``eth0``) looks at every frame before End.DX4 / End.DT6 decapsulate
and forward the inner packet to the receiver.

With the proxy (``sf="proxy"``) the VNF host has no SRv6 configuration and no
route to ``fc00:b::/64``: the proxy's ingress on ``in0`` strips the outer
headers (frames to ``SID_PROXY`` arrive for ``in0``'s MAC address, which the
SFF resolved by neighbour discovery for ``fc00:1::2``), the VNF forwards the
inner packet by its IPv4/IPv6 route for the receiver (``via 10.77.2.2`` /
``via fc00:2::2``: the decapsulating node's ``eth0``), so the frame leaves
``out0`` addressed to the MAC address of the node that owns the egress SID. The
proxy's egress puts the cached IPv6 header and SRH back in front (after End:
SL 0, DA the egress SID, hop limit one less, payload length of the new inner
packet) and keeps those MAC addresses; the decapsulating node takes the frame
as its own and its seg6local route for the egress SID handles it. Returning
packets (ACKs) travel plain by the same routes backwards.

With IOAM (``options.ioam``) the IPv6 routers t1 and t2 sit before and after the
VNF host (``srv6_plan.IOAM_LINKS``): they forward the outer packets by the
locators and the inner ones by the end hosts' prefixes, and fill their node data
of the trace the SFF's stamper inserted (kernel IOAM: ``ip ioam namespace add``,
``net.ipv6.ioam6_id``, per interface ``ioam6_enabled`` / ``ioam6_id``); so does
the VNF host's kernel with the End stand-in, and the decapsulating node after
the checker has seen the packet (TC ingress runs before the IPv6 stack). The
VNF host's next hop for the inner packets is t2, so a proxy's restored frame
goes there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sfcframe.demo import srv6_ioam
from sfcframe.demo import srv6_plan as plan
from sfcframe.demo.srv6_plan import Srv6Options, link_addr
from sfcframe.demo.topology import ROUTE_MTU, Topology, TopologyError, sh

#: H.Encaps adds 80 bytes (IPv6 header and an SRH of two segments), 40 more with
#: the HMAC TLV, to packets of up to ROUTE_MTU bytes
SRV6_VETH_MTU = 1700
ROUTERS = ("sff", "t1", "vnf", "t2", "dec")
#: H.Encaps with the HMAC TLV adds 120 bytes to a ROUTE_MTU packet
SRV6_ENCAP_MAX = 120


@dataclass
class Srv6Topology(Topology):
    """sender - SFF (H.Encaps) - VNF host (SID_PROXY) - decapsulating node - receiver."""

    options: Srv6Options = field(default_factory=Srv6Options)

    #: where the checker goes: the decapsulating node's interface from the VNF host
    checker_role = "dec"
    checker_iface = "eth0"

    @property
    def roles(self) -> list[str]:
        return ["snd", "sff", *self.options.middle, "dec", "rcv"]

    @property
    def veth_mtu(self) -> int:
        """1700; with IOAM, room for the inserted Hop-by-Hop header too (whole hundreds)."""
        if self.options.ioam is None:
            return SRV6_VETH_MTU
        need = ROUTE_MTU + SRV6_ENCAP_MAX + self.options.ioam.hbh_len
        return max(SRV6_VETH_MTU, -(-need // 100) * 100)

    def addr(self, role: str, ifname: str, family: int) -> str:
        """The address of role's interface ifname on this testbed's links."""
        return link_addr(role, ifname, family, self.options.links)

    def next_hop(self, role: str, toward: str, family: int) -> str:
        """The address of the neighbour of role on the path, toward ``snd`` or ``rcv``."""
        path = ["snd", "sff", *self.options.middle, "dec", "rcv"]
        other = path[path.index(role) + (1 if toward == "rcv" else -1)]
        for a, a_if, b, b_if, *_ in self.options.links:
            if {a, b} == {role, other}:
                return self.addr(other, b_if if b == other else a_if, family)
        raise KeyError(f"no link {role} - {other}")

    def sender_addr(self, i: int) -> str:
        return self.options.sender

    def receiver_addr(self, i: int) -> str:
        return self.options.receiver

    def sysctl_settings(self, role: str) -> dict[str, int]:
        router = int(role in ROUTERS)
        return {
            "net.ipv4.ip_forward": router,
            "net.ipv6.conf.all.forwarding": router,
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
            "net.ipv6.conf.all.disable_ipv6": 0,
            "net.ipv6.conf.default.disable_ipv6": 0,
            # no duplicate address detection: addresses are usable at once
            "net.ipv6.conf.all.accept_dad": 0,
            "net.ipv6.conf.default.accept_dad": 0,
        }

    def runtime_managed(self, role: str) -> bool:
        """With the End stand-in the VNF host's offloads are the demo's (all off, as on
        the other nodes); with the proxy, the runtime's ``up`` sets them."""
        return role == "vnf" and self.options.sf == "proxy"

    # ---- building ----------------------------------------------------------
    def create(self) -> "Srv6Topology":
        if self.created:
            return self
        self._make_namespaces()
        for a, a_if, b, b_if, *_ in self.options.links:
            self._veth(a, a_if, f"{self.addr(a, a_if, 4)}/24", b, b_if, f"{self.addr(b, b_if, 4)}/24")
            for role, ifname in ((a, a_if), (b, b_if)):
                self.ip(role, "addr", "add", f"{self.addr(role, ifname, 6)}/64", "dev", ifname, "nodad")
        self._plain_routes()
        self._sff()
        if self.options.sf == "end":
            self._vnf_end()
        self._dec()
        if self.options.ioam is not None:
            self._ioam()
        self._offloads()
        return self

    def _route(self, role: str, family: int, *args: str) -> None:
        self.ip(role, f"-{family}", "route", "add", *args)

    def _plain_routes(self) -> None:
        """Routes of the plain packets: end hosts' defaults; every router between the
        SFF and the decapsulating node routes toward both ends, the decapsulating node
        toward the sender (IPv4 and IPv6)."""
        for host, router, ifname in (("snd", "sff", "to-snd1"), ("rcv", "dec", "to-rcv")):
            for fam in (4, 6):
                self._route(host, fam, "default", "via", self.addr(router, ifname, fam),
                            "mtu", str(ROUTE_MTU))
        for fam, snd_net, rcv_net in ((4, plan.SND4_NET, plan.RCV4_NET),
                                      (6, plan.SND6_NET, plan.RCV6_NET)):
            for role in self.options.middle:
                self._route(role, fam, snd_net, "via", self.next_hop(role, "snd", fam))
                self._route(role, fam, rcv_net, "via", self.next_hop(role, "rcv", fam))
            self._route("dec", fam, snd_net, "via", self.next_hop("dec", "snd", fam))

    def _hmac_key(self, role: str) -> None:
        """``ip sr hmac set KEYID ALGO`` reads the secret from stdin (no terminal)."""
        sh(["ip", "-n", self.ns(role), "sr", "hmac", "set", str(plan.HMAC_KEYID), plan.HMAC_ALGO],
           input=plan.HMAC_SECRET + "\n")

    def _sff(self) -> None:
        """H.Encaps toward the receiver (both inner families), the route to the VNF
        host's locator, the outer source address, the HMAC key."""
        self.ip("sff", "sr", "tunsrc", "set", plan.TUNSRC)
        self._route("sff", 6, plan.LOCATOR_PROXY, "via", self.next_hop("sff", "rcv", 6))
        hmac = []
        if self.options.hmac:
            self._hmac_key("sff")
            hmac = ["hmac", str(plan.HMAC_KEYID)]
        for fam, net, sid in ((4, plan.RCV4_NET, plan.SID_DX4), (6, plan.RCV6_NET, plan.SID_DT6)):
            self._route("sff", fam, net, "encap", "seg6", "mode", "encap",
                        "segs", f"{plan.SID_PROXY},{sid}", *hmac, "dev", "down0")

    def _seg6_enable(self, role: str, ifname: str) -> None:
        """SRH processing on for ifname. seg6local routes work without it (it governs
        SRHs of packets to local addresses); set as a receiving SRv6 node would."""
        self.exec(role, "sysctl", "-q", "-w", "net.ipv6.conf.all.seg6_enabled=1",
                  f"net.ipv6.conf.{ifname}.seg6_enabled=1")

    def _vnf_end(self) -> None:
        """The kernel stand-in for the proxy: End for SID_PROXY, and the route onward."""
        self._seg6_enable("vnf", "in0")
        self._route("vnf", 6, f"{plan.SID_PROXY}/128", "encap", "seg6local", "action", "End",
                    "count", "dev", "in0")
        self._route("vnf", 6, plan.LOCATOR_EGRESS, "via", self.next_hop("vnf", "rcv", 6))
        if self.options.hmac:
            # an End node validates an HMAC it finds unless told to ignore it, and has
            # no key here: ignore it (-1), so that only the decapsulating node checks
            self.exec("vnf", "sysctl", "-q", "-w", "net.ipv6.conf.in0.seg6_require_hmac=-1")

    def _dec(self) -> None:
        """The egress SIDs (with counters) and, with HMAC, the key and the requirement."""
        self._seg6_enable("dec", "eth0")
        self._route("dec", 6, f"{plan.SID_DX4}/128", "encap", "seg6local", "action", "End.DX4",
                    "nh4", plan.RCV4, "count", "dev", "eth0")
        self._route("dec", 6, f"{plan.SID_DT6}/128", "encap", "seg6local", "action", "End.DT6",
                    "table", "254", "count", "dev", "eth0")
        if self.options.hmac:
            self._hmac_key("dec")
            self.exec("dec", "sysctl", "-q", "-w", "net.ipv6.conf.eth0.seg6_require_hmac=1")

    def _ioam(self) -> None:
        """Kernel IOAM: t1 and t2 forward the outer packets by the locators; t1, t2,
        the decapsulating node and (End stand-in with the kernel filling) the VNF host
        know the namespace, have node ids and interface ids, and take IOAM on the
        interface the traced packets arrive on."""
        io = self.options.ioam
        self._route("t1", 6, plan.LOCATOR_PROXY, "via", self.next_hop("t1", "rcv", 6))
        self._route("t2", 6, plan.LOCATOR_EGRESS, "via", self.next_hop("t2", "rcv", 6))
        nodes = ["t1", "t2", "dec"] + (["vnf"] if io.filler(self.options.sf) == "kernel" else [])
        for role in nodes:
            ids = srv6_ioam.node_ids(role)
            self.ip(role, "ioam", "namespace", "add", str(io.namespace),
                    "data", hex(ids.namespace_data), "wide", hex(ids.wide_namespace_data))
            settings = [f"net.ipv6.ioam6_id={ids.node_id}", f"net.ipv6.ioam6_id_wide={ids.wide_node_id}",
                        f"net.ipv6.conf.{srv6_ioam.IFACES[role][0]}.ioam6_enabled=1"]
            for ifname, (short, wide) in ids.if_ids.items():
                settings += [f"net.ipv6.conf.{ifname}.ioam6_id={short}",
                             f"net.ipv6.conf.{ifname}.ioam6_id_wide={wide}"]
            self.exec(role, "sysctl", "-q", "-w", *settings)

    def inner_next_hop(self) -> tuple[str, str]:
        """(source, destination) Ethernet addresses the VNF host's forwarding gives an
        inner packet to the receiver: what a restored frame leaves ``out0`` with. The
        next hop is the decapsulating node, or t2 with IOAM (resolved by the warm-up's
        pings)."""
        route = json.loads(self.ip("vnf", "-j", "route", "get", self.options.receiver).stdout)[0]
        gateway, dev = route["gateway"], route["dev"]
        neigh = json.loads(self.ip("vnf", "-j", "neigh", "show", gateway, "dev", dev).stdout)
        if not neigh or "lladdr" not in neigh[0]:
            raise TopologyError(f"vnf: no neighbour entry for {gateway} on {dev} (warm_up first)")
        link = json.loads(self.ip("vnf", "-j", "link", "show", "dev", dev).stdout)[0]
        return link["address"], neigh[0]["lladdr"]

    # ---- the kernel's own counters -------------------------------------------
    def seg6local_counters(self, role: str, sid: str) -> dict[str, int]:
        """packets / bytes / errors of a seg6local route (its ``count`` option)."""
        out = self.ip(role, "-j", "-s", "-6", "route", "show", f"{sid}/128").stdout
        routes = json.loads(out or "[]")
        stats = routes[0].get("stats64", {}) if routes else {}
        return {k: int(stats.get(k, 0)) for k in ("packets", "bytes", "errors")}

    def snmp(self, role: str) -> dict[str, int]:
        """The namespace's /proc/net/snmp (as ``IpInReceives``, ``TcpInSegs`` ...) and
        /proc/net/snmp6 counters."""
        out: dict[str, int] = {}
        lines = self.exec(role, "cat", "/proc/net/snmp").stdout.splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            proto, *keys = names.split()
            for key, value in zip(keys, values.split()[1:]):
                out[proto.rstrip(":") + key] = int(value)
        for line in self.exec(role, "cat", "/proc/net/snmp6").stdout.splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
        return out

    def kernel_counters(self) -> dict[str, dict[str, int]]:
        """The kernel's SRv6 counters of this testbed: the egress SIDs, and the VNF
        host's End when the stand-in runs."""
        out = {f"dec End.DX4 {plan.SID_DX4}": self.seg6local_counters("dec", plan.SID_DX4),
               f"dec End.DT6 {plan.SID_DT6}": self.seg6local_counters("dec", plan.SID_DT6)}
        if self.options.sf == "end":
            out[f"vnf End {plan.SID_PROXY}"] = self.seg6local_counters("vnf", plan.SID_PROXY)
        return out

    def downstream_drops(self) -> int:
        """Frames a seg6local route forwarded that the next veth dropped (its peer's
        backlog was full): the decapsulating node's toward the receiver, and with the
        End stand-in the VNF host's toward the decapsulating node. The kernel counts
        such a drop as an error of the seg6local route that forwarded the packet."""
        from sfcframe.demo.topology import link_stats

        dropped = link_stats(self.ns("dec"), "to-rcv")["tx_dropped"]
        if self.options.sf == "end":  # the stand-in's End forwards toward dec on out0
            dropped += link_stats(self.ns("vnf"), self.vnf_ifaces[1])["tx_dropped"]
        return dropped

    def warm_up(self, attempts: int = 10) -> None:
        """Resolve the neighbours on every link (one ping across each, both families),
        then, with the End stand-in, ping the receiver through the SRv6 path until one
        reply (a proxy that keys on TCP passes ICMP through unchanged, so with the
        proxy only TCP can cross the path)."""
        for a, a_if, b, b_if, *_ in self.options.links:
            for fam in (4, 6):
                self.exec(a, "ping", "-c", "1", "-W", "1", self.addr(b, b_if, fam), check=False)
        if self.options.sf != "end":
            return
        for _ in range(attempts):
            if self.exec("snd", "ping", "-c", "1", "-W", "1", self.options.receiver,
                         check=False).returncode == 0:
                return
        raise TopologyError(f"no ping reply from {self.options.receiver} through the SRv6 path "
                            f"after {attempts} attempts ({self.options.describe()})")
