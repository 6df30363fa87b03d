"""Real TCP traffic with iperf3: one server per stream in a receiver, one client
per stream in a sender, each pair pinned to one CPU (``taskset``) so that the
packets of different streams are processed on different CPUs (a veth hands a
packet on on the CPU that sent it)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field

from sfcframe.demo.topology import Topology, TopologyError

BASE_PORT = 5201


@dataclass
class Stream:
    sender: str
    receiver: str
    address: str
    port: int
    cpu: int
    server: subprocess.Popen | None = None
    client: subprocess.Popen | None = None
    result: dict = field(default_factory=dict)
    error: str = ""
    #: more iperf3 client arguments (e.g. ``-u -b 0`` for UDP)
    extra: list[str] = field(default_factory=list)

    @property
    def bits_per_second(self) -> float:
        end = self.result.get("end", {}) if isinstance(self.result, dict) else {}
        for part in ("sum_received", "sum"):  # iperf3 UDP reports "sum" only (3.12)
            try:
                return float(end[part]["bits_per_second"])
            except (KeyError, TypeError, ValueError):
                continue
        return 0.0

    @property
    def retransmits(self) -> int:
        try:
            return int(self.result["end"]["sum_sent"].get("retransmits", 0))
        except (KeyError, TypeError, AttributeError):
            return 0


def plan(topo: Topology, streams: int) -> list[Stream]:
    """Streams spread over the chains and the CPUs: stream k uses chain k mod chains."""
    ncpu = os.cpu_count() or 1
    out = []
    for k in range(max(streams, topo.chains)):
        i = k % topo.chains
        out.append(
            Stream(
                sender=topo.senders[i],
                receiver=topo.receivers[i],
                address=topo.receiver_addr(i + 1),
                port=BASE_PORT + k,
                cpu=k % ncpu,
            )
        )
    return out


def _listening(topo: Topology, role: str, port: int) -> bool:
    out = topo.exec(role, "ss", "-Hltn", f"sport = :{port}", check=False).stdout
    return bool(out.strip())


def start(topo: Topology, streams: list[Stream], seconds: float) -> None:
    for s in streams:
        s.server = topo.popen(
            s.receiver,
            ["taskset", "-c", str(s.cpu), "iperf3", "-s", "-1", "-p", str(s.port), "-B", s.address],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 5
    for s in streams:
        while not _listening(topo, s.receiver, s.port):
            if s.server.poll() is not None or time.monotonic() > deadline:
                raise TopologyError(f"iperf3 server in {s.receiver} port {s.port} did not start")
            time.sleep(0.05)
    for s in streams:
        s.client = topo.popen(
            s.sender,
            [
                "taskset", "-c", str(s.cpu), "iperf3", "-c", s.address, "-p", str(s.port),
                "-t", str(seconds), "-J", "--connect-timeout", "3000", *s.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def running(streams: list[Stream]) -> bool:
    return any(s.client is not None and s.client.poll() is None for s in streams)


def stop(streams: list[Stream], why: str) -> None:
    """End clients that are still running (by pid); their streams report why."""
    for s in streams:
        if s.client is not None and s.client.poll() is None:
            s.client.kill()
            s.error = f"iperf3 client stopped: {why}"


def collect(streams: list[Stream], timeout: float = 15) -> None:
    for s in streams:
        if s.client is None:
            continue
        try:
            out, err = s.client.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            s.error = "iperf3 client did not finish"
            continue
        try:
            s.result = json.loads(out) if out.strip() else {}
        except json.JSONDecodeError:
            s.result = {}
        if s.error:
            continue
        if s.result.get("error"):
            s.error = s.result["error"]
        elif s.client.returncode:
            s.error = (err or out).strip()[:200] or f"iperf3 exited {s.client.returncode}"
