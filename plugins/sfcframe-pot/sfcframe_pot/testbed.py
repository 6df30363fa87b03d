"""The proof-of-transit testbed (tests/test_pot_testbed.py): sfcframe's SRv6 kernel-peer testbed
(``sfcframe.demo.srv6_topology``, SRV6-TESTBED.md) with the proxy and its pot
stage on the VNF host, an encapsulating node that inserts the POT option on the
SFF, a bypass link around the VNF host, and captures at the decapsulating node::

    snd ── sff ─────────── vnf ─────────── dec ── rcv
           H.Encaps        proxy (node 2)   capture, End.DX4
           + pot_node      + VNF forward
           (node 1)
            └────────── byp0 ── byp1 ───────┘   the bypass: segments [fc00:b::4] only

Traffic is real TCP (iperf3) from snd to rcv. Which way the SFF encapsulates
(through the proxy's SID, or straight to the egress SID over the bypass), the
proxy's share and the encapsulating node's replay switch are set per run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from sfcframe.demo import programs
from sfcframe.demo import srv6_plan as plan
from sfcframe.demo.srv6_topology import Srv6Topology

from sfcframe_pot import profile
from sfcframe_pot.arith import addmod
from sfcframe_pot.stage import PotStage

NAMESPACE = 0x8FC0
BYPASS = ("fc00:9::1", "fc00:9::2")
RECEIVER_NET = "10.77.3.0/24"
SFCFRAME = [sys.executable, "-m", "sfcframe"]


def sfc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SFCFRAME, *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"sfcframe {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def render_node() -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(PotStage.template_dir()),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template("testbed_node.c.j2").render()


@dataclass
class PotBed:
    workdir: Path
    topo: Srv6Topology = field(default_factory=lambda: Srv6Topology(
        options=plan.Srv6Options(inner="ipv4", sf="proxy")))
    prof: profile.Profile = field(default_factory=lambda: profile.generate(2, namespace=NAMESPACE))
    bpf: object = None
    fd: int = -1
    proxy_up: bool = False

    @property
    def name(self) -> str:
        return self.topo.prefix

    # ---- building --------------------------------------------------------
    def create(self) -> "PotBed":
        self.bpf, fds = programs.compile_programs("POT encapsulating node", render_node(),
                                                  {"pot_node": "SCHED_CLS"})
        self.fd = fds["pot_node"]
        self.topo.create()
        t = self.topo
        t._veth("sff", "byp0", None, "dec", "byp1", None)
        t.ip("sff", "addr", "add", f"{BYPASS[0]}/64", "dev", "byp0", "nodad")
        t.ip("dec", "addr", "add", f"{BYPASS[1]}/64", "dev", "byp1", "nodad")
        t.exec("dec", "sysctl", "-qw", "net.ipv6.conf.byp1.seg6_enabled=1")
        for role, ifname in (("sff", "byp0"), ("dec", "byp1")):
            t.exec(role, "ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off",
                   "gro", "off", check=False)
        t.ip("sff", "-6", "route", "add", f"{plan.SID_DX4}/128", "via", BYPASS[1], "dev", "byp0")
        self.profile_files = profile.write(self.prof, self.workdir / "pot")
        sfc("up", "--name", self.name, "--encap", "srv6", "--key", "tcpip", "--stage", "pot",
            "--param", f"sid={plan.SID_PROXY}", "--param", "ingress=tc",
            "--param", "max_ext_bytes=64", "--iface", "in0", "--iface", "out0",
            "--netns", t.ns("vnf"))
        self.proxy_up = True
        sfc("set", self.name, "--from", str(self.profile_files[2]))  # node-2.settings
        self.node_settings()
        for ifname in ("down0", "byp0"):
            programs.attach_tc(t.ns("sff"), ifname, self.fd, "pot_node", programs.TC_EGRESS)
        t.warm_up()
        return self

    def destroy(self) -> list[str]:
        left = []
        if self.proxy_up:
            down = sfc("down", self.name, check=False)
            if down.returncode != 0:
                left.append(down.stderr.strip())
        left += self.topo.destroy()
        if self.bpf is not None:
            with contextlib.suppress(Exception):
                self.bpf.cleanup()
        return left

    # ---- switches ----------------------------------------------------------
    def node_settings(self, replay_cml: int | None = None) -> None:
        """Node 1's share, public value and LPC; replay: CML = replay_cml for every packet."""
        n1 = self.prof.node(1)
        table = self.bpf.get_table(b"pot_node_settings_map")
        leaf = table.Leaf(addmod(n1.share, n1.public), n1.lpc, NAMESPACE,
                          int(replay_cml is not None), replay_cml or 0)
        table[table.Key(0)] = leaf

    def route(self, bypass: bool) -> None:
        """The SFF's H.Encaps route for the receiver: through the proxy's SID, or
        around the VNF host straight to the egress SID."""
        if bypass:
            self.topo.ip("sff", "-4", "route", "replace", RECEIVER_NET, "encap", "seg6", "mode",
                         "encap", "segs", plan.SID_DX4, "dev", "byp0")
        else:
            self.topo.ip("sff", "-4", "route", "replace", RECEIVER_NET, "encap", "seg6", "mode",
                         "encap", "segs", f"{plan.SID_PROXY},{plan.SID_DX4}", "dev", "down0")

    def node_counters(self) -> dict[str, int]:
        table = self.bpf.get_table(b"pot_node_counters")
        return {name: sum(table[table.Key(i)]) for i, name in
                enumerate(("inserted", "other", "error"))}

    def proxy_stats(self) -> dict:
        return json.loads(sfc("stats", self.name, "--json").stdout)

    # ---- traffic -----------------------------------------------------------
    def transfer(self, label: str, size: str = "3M") -> tuple[Path, dict]:
        """iperf3 from snd to rcv (``size`` bytes) while the decapsulating node captures
        the SRv6 frames arriving on both its links; returns the pcap and iperf3's JSON."""
        pcap = self.workdir / f"{label}.pcap"
        t = self.topo
        cap = t.popen("dec", ["tcpdump", "-i", "any", "-U", "-B", "16384", "-s", "160", "-w", str(pcap),
                              "ip6 and dst host " + plan.SID_DX4],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        server = t.popen("rcv", ["iperf3", "-s", "-1", "-B", t.options.receiver],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # tcpdump and the server listening
        try:
            client = t.exec("snd", "iperf3", "-c", t.options.receiver, "-n", size, "-J",
                            "-M", "1400", timeout=90, check=False)
            result = json.loads(client.stdout or "{}")
        finally:
            time.sleep(0.5)  # the last frames into the capture
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cap.pid, signal.SIGINT)
            cap.wait(timeout=10)
            with contextlib.suppress(Exception):
                server.wait(timeout=5)
        return pcap, result
