"""The demo's namespaces and veth pairs.

One chain (the default)::

    snd ──eth0│to-snd1── sff ──down0│in0── vnf ──out0│eth0── rcv
    10.77.11.2  .1             10.77.1.1 .2    10.77.2.1  .2

Two chains: ``snd1``/``snd2`` on their own sff ports (10.77.11.0/24,
10.77.12.0/24); the VNF's ``out0`` goes to a bridge in namespace ``sw`` whose
other ports lead to ``rcv1`` (10.77.2.11) and ``rcv2`` (10.77.2.12): a bridge
forwards the restored encapsulation unchanged, which a router here could not
(no MPLS forwarding in this kernel). Without a VNF (``vnf=False``, used to
check the stamper and checker alone) ``down0`` leads straight to the
receiver(s).

Names are unique per run (``sfcd-<6 hex>-<role>``); interface names and
addresses exist only inside the namespaces. Every veth has MTU 1600 (the
encapsulation is pushed onto full-size frames) and the senders and receivers
use a route MTU of 1500.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field

from sfcframe.errors import SfcError

VETH_MTU = 1600
ROUTE_MTU = 1500
NETNS_DIR = "/run/netns"
PREFIX = "sfcd"


class TopologyError(SfcError):
    """A command building or running the testbed failed (one line for the CLI)."""

    exit_code = 1


def sh(argv: list[str], *, check: bool = True, timeout: float = 30,
       input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command; with ``input`` (its stdin) in a session of its own, without a
    controlling terminal, so a tool that prompts (getpass) reads stdin."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                          start_new_session=input is not None)
    if check and proc.returncode != 0:
        raise TopologyError(f"{' '.join(argv)}: {(proc.stderr or proc.stdout).strip()}")
    return proc


def link_stats(netns: str, ifname: str) -> dict[str, int]:
    """A veth's packet and drop counters (``ip -s link``). A veth whose peer's backlog is
    full counts the frame it could not hand over as its own ``tx_dropped``."""
    import json

    out = sh(["ip", "-n", netns, "-s", "-j", "link", "show", "dev", ifname]).stdout
    s = json.loads(out)[0].get("stats64", {})
    return {"rx_packets": int(s["rx"]["packets"]), "tx_packets": int(s["tx"]["packets"]),
            "rx_dropped": int(s["rx"].get("dropped", 0)), "tx_dropped": int(s["tx"].get("dropped", 0))}


@dataclass
class Topology:
    chains: int = 1
    vnf: bool = True
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    namespaces: dict[str, str] = field(default_factory=dict)  # role -> netns name
    procs: list[subprocess.Popen] = field(default_factory=list)
    created: bool = False

    # ---- names ---------------------------------------------------------
    @property
    def prefix(self) -> str:
        return f"{PREFIX}-{self.tag}"

    def ns(self, role: str) -> str:
        return self.namespaces[role]

    @property
    def senders(self) -> list[str]:
        return ["snd"] if self.chains == 1 else [f"snd{i}" for i in range(1, self.chains + 1)]

    @property
    def receivers(self) -> list[str]:
        return ["rcv"] if self.chains == 1 else [f"rcv{i}" for i in range(1, self.chains + 1)]

    def sender_addr(self, i: int) -> str:
        return f"10.77.{10 + i}.2"

    def receiver_addr(self, i: int) -> str:
        return "10.77.2.2" if self.chains == 1 else f"10.77.2.{10 + i}"

    #: the SFF's interface toward the VNF (or the receivers): the stamper's hook
    sff_iface = "down0"
    #: the VNF's interfaces: from the SFF, toward the receivers
    vnf_ifaces = ("in0", "out0")
    #: every receiver's interface: the checker's hook
    rcv_iface = "eth0"
    #: every veth's MTU
    veth_mtu = VETH_MTU

    @property
    def roles(self) -> list[str]:
        roles = [*self.senders, "sff"]
        if self.vnf:
            roles.append("vnf")
        if self.chains > 1:
            roles.append("sw")
        return roles + self.receivers

    # ---- commands inside the namespaces --------------------------------
    def ip(self, role: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(["ip", "-n", self.ns(role), *args], check=check)

    def exec(self, role: str, *argv: str, check: bool = True, timeout: float = 30):
        return sh(["ip", "netns", "exec", self.ns(role), *argv], check=check, timeout=timeout)

    def popen(self, role: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start a process inside a namespace; it is ended (by its pid) on teardown."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(role), *argv], start_new_session=True, **kwargs
        )
        self.procs.append(proc)
        return proc

    # ---- life cycle ----------------------------------------------------
    def create(self) -> "Topology":
        if self.created:
            return self
        self._make_namespaces()

        for i, snd in enumerate(self.senders, 1):
            self._veth(snd, "eth0", f"{self.sender_addr(i)}/24", "sff", f"to-snd{i}", f"10.77.{10 + i}.1/24")
            self.ip(snd, "route", "add", "default", "via", f"10.77.{10 + i}.1", "mtu", str(ROUTE_MTU))

        if self.vnf:
            self._veth("sff", self.sff_iface, "10.77.1.1/24", "vnf", self.vnf_ifaces[0], "10.77.1.2/24")
            self.ip("sff", "route", "add", "10.77.2.0/24", "via", "10.77.1.2")
            self.ip("vnf", "route", "add", "10.77.0.0/16", "via", "10.77.1.1")
            upstream, up_if = "vnf", self.vnf_ifaces[1]
        else:
            upstream, up_if = "sff", self.sff_iface
        gateway = "10.77.2.1"
        if self.chains == 1:
            self._veth(upstream, up_if, f"{gateway}/24", "rcv", self.rcv_iface, "10.77.2.2/24")
        else:
            self.ip("sw", "link", "add", "br0", "mtu", str(self.veth_mtu), "type", "bridge")
            self._veth(upstream, up_if, f"{gateway}/24", "sw", "p0", None)
            self.ip("sw", "link", "set", "p0", "master", "br0")
            for i, rcv in enumerate(self.receivers, 1):
                self._veth("sw", f"p{i}", None, rcv, self.rcv_iface, f"{self.receiver_addr(i)}/24")
                self.ip("sw", "link", "set", f"p{i}", "master", "br0")
            self.ip("sw", "link", "set", "br0", "up")
        for rcv in self.receivers:
            self.ip(rcv, "route", "add", "default", "via", gateway, "mtu", str(ROUTE_MTU))
        self._offloads()
        return self

    def _make_namespaces(self) -> None:
        """One namespace per role, loopback up, the role's sysctls."""
        self.created = True  # from here on, destroy() has something to undo
        for role in self.roles:
            name = f"{self.prefix}-{role}"
            sh(["ip", "netns", "add", name])
            self.namespaces[role] = name
            self.ip(role, "link", "set", "lo", "up")
            self._sysctls(role)

    def _sysctls(self, role: str) -> None:
        settings = self.sysctl_settings(role)
        self.exec(role, "sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items()))

    def sysctl_settings(self, role: str) -> dict[str, int]:
        return {
            "net.ipv4.ip_forward": 1 if role in ("sff", "vnf") else 0,
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
            "net.ipv6.conf.all.disable_ipv6": 1,
            "net.ipv6.conf.default.disable_ipv6": 1,
        }

    def _veth(self, a: str, a_if: str, a_addr: str | None, b: str, b_if: str, b_addr: str | None) -> None:
        sh([
            "ip", "link", "add", a_if, "netns", self.ns(a), "mtu", str(self.veth_mtu), "type", "veth",
            "peer", "name", b_if, "netns", self.ns(b), "mtu", str(self.veth_mtu),
        ])
        for role, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            if addr:
                self.ip(role, "addr", "add", addr, "dev", ifname)
            self.ip(role, "link", "set", ifname, "up")

    def _offloads(self) -> None:
        """Senders, receivers and the SFF: no transmit checksum offload (native veth
        XDP downstream loses CHECKSUM_PARTIAL), no TSO/GSO/GRO (one skb per frame, so
        one stamp per frame). The VNF's interfaces are the runtime's business."""
        off = ["tx", "off", "tso", "off", "gso", "off", "gro", "off"]
        for role in self.roles:
            if self.runtime_managed(role):
                continue
            for ifname in self.interfaces(role):
                self.exec(role, "ethtool", "-K", ifname, *off)

    def toward_receivers(self) -> list[tuple[str, str]]:
        """(role, interface) of every veth end that sends toward the receivers after the
        proxy (the VNF's outer port, or the SFF's without a VNF; the bridge's ports)."""
        first = ("vnf", self.vnf_ifaces[1]) if self.vnf else ("sff", self.sff_iface)
        if self.chains == 1:
            return [first]
        return [first, *(("sw", f"p{i}") for i in range(1, len(self.receivers) + 1))]

    def dropped_toward_receivers(self) -> int:
        """Frames the links after the proxy dropped (a receiver's backlog was full):
        restored by the proxy, never seen by a checker."""
        return sum(link_stats(self.ns(role), ifname)["tx_dropped"]
                   for role, ifname in self.toward_receivers())

    def runtime_managed(self, role: str) -> bool:
        """Whether the proxy's runtime (``up``) sets this role's offloads."""
        return role == "vnf"

    def interfaces(self, role: str) -> list[str]:
        out = self.ip(role, "-o", "link", "show", "type", "veth").stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()]

    def stop_processes(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
        self.procs.clear()

    def destroy(self) -> list[str]:
        """Stop our processes, delete our namespaces; returns what could not be removed."""
        self.stop_processes()
        left = []
        for role, name in list(self.namespaces.items()):
            proc = sh(["ip", "netns", "del", name], check=False)
            if proc.returncode != 0 and os.path.exists(f"{NETNS_DIR}/{name}"):
                left.append(name)
            else:
                del self.namespaces[role]
        self.created = bool(self.namespaces)
        return left

    def __enter__(self) -> "Topology":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.destroy()


def leftover_namespaces(tag: str | None = None) -> list[str]:
    """Demo namespaces that still exist (of one run, or of any)."""
    if not os.path.isdir(NETNS_DIR):
        return []
    start = f"{PREFIX}-{tag}-" if tag else f"{PREFIX}-"
    return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(start))
