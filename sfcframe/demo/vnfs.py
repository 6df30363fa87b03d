"""The legacy VNFs the demo can run in the ``vnf`` namespace (SFC-unaware; the
proxy hides the encapsulation from them).

- ``forward``: plain IPv4 forwarding (``ip_forward``).
- ``drop``: forwarding, and iptables (ip6tables for IPv6) drops 1 % of the
  packets that arrive from the SFF at random (``-m statistic --mode random``).
- ``nat``: forwarding with MASQUERADE (IPv4 and IPv6) on the interface toward the receivers:
  addresses and ports change, so only a key that does not look at them (the
  ``metadata`` key) finds the cached encapsulation again.
- ``delay``: a user-space program (:mod:`sfcframe.demo.tundelay`) holds every
  packet from the SFF for a few ms: policy routing sends them into a TUN device,
  the program writes them back after the delay and the kernel routes them on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from sfcframe.demo.topology import Topology, TopologyError

KINDS = ("forward", "drop", "nat", "delay")
#: the key `--key auto` picks: tcpip cannot survive NAT, metadata cannot survive user space
AUTO_KEY = {"forward": "tcpip", "drop": "tcpip", "nat": "metadata", "delay": "tcpip"}
DROP_PROBABILITY = 0.01
#: IPv4 and IPv6 (inner IPv6 packets: the SRv6 testbed)
TABLES = ("iptables", "ip6tables")
TUN = "tun0"
TUN_TABLE = "100"
TUN_QUEUE = 4096


@dataclass
class Vnf:
    kind: str
    delay_ms: float = 3.0
    drop_probability: float = DROP_PROBABILITY
    proc: subprocess.Popen | None = None
    stats_file: str = ""
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        return {
            "forward": "IP forwarding",
            "drop": f"forwarding, {self.drop_probability:.0%} random drop (iptables statistic)",
            "nat": "forwarding + MASQUERADE (in-kernel NAT)",
            "delay": f"user-space TUN program holding packets {self.delay_ms:g} ms",
        }[self.kind]

    def setup(self, topo: Topology) -> None:
        if self.kind not in KINDS:
            raise TopologyError(f"unknown VNF {self.kind!r} (known: {', '.join(KINDS)})")
        in_if, out_if = topo.vnf_ifaces
        if self.kind == "drop":
            for tables in TABLES:
                topo.exec(
                    "vnf", tables, "-A", "FORWARD", "-i", in_if, "-m", "statistic",
                    "--mode", "random", "--probability", str(self.drop_probability), "-j", "DROP",
                )
        elif self.kind == "nat":
            for tables in TABLES:
                topo.exec("vnf", tables, "-t", "nat", "-A", "POSTROUTING", "-o", out_if,
                          "-j", "MASQUERADE")
        elif self.kind == "delay":
            self._setup_delay(topo, in_if)

    def _setup_delay(self, topo: Topology, in_if: str) -> None:
        topo.ip("vnf", "tuntap", "add", "dev", TUN, "mode", "tun")
        # a long queue in front of the program: it reads in bursts, and a packet the
        # queue drops leaves a stale cache entry (like the drop VNF)
        topo.ip("vnf", "link", "set", TUN, "txqueuelen", str(TUN_QUEUE), "up")
        topo.exec("vnf", "sysctl", "-q", "-w", f"net.ipv4.conf.{TUN}.rp_filter=0")
        topo.ip("vnf", "route", "add", "default", "dev", TUN, "table", TUN_TABLE)
        topo.ip("vnf", "rule", "add", "iif", in_if, "lookup", TUN_TABLE, "pref", "100")
        fd, self.stats_file = tempfile.mkstemp(prefix="sfcd-tundelay-", suffix=".json")
        os.close(fd)
        self.proc = topo.popen(
            "vnf",
            [sys.executable, "-m", "sfcframe.demo.tundelay", TUN,
             "--delay-ms", str(self.delay_ms), "--stats", self.stats_file],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.2)
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise TopologyError(f"the TUN delay program exited: {err.strip()[-300:]}")

    def counters(self, topo: Topology) -> dict:
        """What the VNF itself saw (iptables drops, TUN program counters)."""
        if self.kind == "drop":
            dropped = 0
            for tables in TABLES:
                out = topo.exec("vnf", tables, "-nvxL", "FORWARD", check=False).stdout
                dropped += sum(int(line.split()[0]) for line in out.splitlines()
                               if "statistic" in line and "DROP" in line)
            return {"dropped": dropped}
        if self.kind == "delay":
            return dict(self.extra)
        return {}

    def stop(self) -> None:
        """Stop the TUN program (by its pid) and keep its counters."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        if self.stats_file and os.path.exists(self.stats_file):
            try:
                with open(self.stats_file) as f:
                    text = f.read()
                if text:
                    self.extra = json.loads(text)
            except (OSError, ValueError):
                pass
            finally:
                os.unlink(self.stats_file)
            self.stats_file = ""
