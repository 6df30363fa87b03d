"""The apn stage on the SRv6 namespace testbed with real TCP: the kernel's H.Encaps on
the SFF (plus an APN Hop-by-Hop option, per stream its own APN ID), sfcframe's srv6
proxy with the apn stage around a forwarding function (started by the runtime, as
`sfcframe up` does), the kernel's End.DX4 decapsulating. Checked: the function's
iptables sees the mapped DSCP, the receiver the original one (and accepts every
IPv4 header: checksums right); the decapsulating node gets the APN header back
byte for byte; `sfcframe stats` counts packets and bytes per APN ID (JSON and
Prometheus). Namespaces and the proxy go away even when the test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

import pytest

from sfcframe_apn.testbed import ID_BASE, ApnSource, hbh_of, parse_pcap

pytestmark = pytest.mark.kernel

SECONDS = 3
PORTS = (5301, 5302)  # stream 1 is mapped to EF, stream 2 is in no slot
TOS = 0x20  # DSCP 8 (CS1), what the sender sets
EF = 46
OPTION_TYPE = 0x1E


def _iptables_count(topo, role: str, chain: str, dscp: int) -> int:
    out = topo.exec(role, "iptables", "-t", "mangle", "-nvxL", chain).stdout
    for line in out.splitlines():
        if f"DSCP match 0x{dscp:02x}" in line:
            return int(line.split()[0])
    raise AssertionError(f"no DSCP {dscp} rule in {role} {chain}:\n{out}")


def _count_dscp(topo, role: str, chain: str, extra: list[str]) -> None:
    for dscp in (EF, TOS >> 2):
        topo.exec(role, "iptables", "-t", "mangle", "-A", chain, *extra, "-m", "dscp",
                  "--dscp", str(dscp))


@pytest.fixture
def testbed(kernel_ready):
    """An SRv6 testbed (sff H.Encaps -> vnf -> dec End.DX4 -> rcv) with the proxy's
    interfaces left to the runtime; everything removed afterwards."""
    from sfcframe.demo import srv6_plan
    from sfcframe.demo.srv6_topology import Srv6Topology
    from sfcframe.demo.topology import leftover_namespaces, sh
    from sfcframe.runtime.teardown import down

    tag = "a" + secrets.token_hex(3)
    topo = Srv6Topology(options=srv6_plan.Srv6Options(inner="ipv4", sf="proxy"), tag=tag)
    procs: list[subprocess.Popen] = []
    try:
        topo.create()
        yield topo, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        down(topo.prefix)
        topo.destroy()
        for ns in leftover_namespaces(tag):
            sh(["ip", "netns", "del", ns], check=False)


def test_counters_per_apn_id_and_dscp_mapping_with_real_tcp(testbed):
    from sfcframe.demo import srv6_plan
    from sfcframe.demo.vnfs import Vnf
    from sfcframe.runtime import instance, state
    from sfcframe.runtime.config import UpRequest
    from sfcframe.runtime.stats import collect

    topo, procs = testbed
    Vnf("forward").setup(topo)
    instance.up(UpRequest(
        name=topo.prefix, encap="srv6", key="tcpip", interfaces=list(topo.vnf_ifaces),
        netns=topo.ns("vnf"), stages=["apn"],
        params={"sid": srv6_plan.SID_PROXY, "max_ext_bytes": "64", "ingress": "tc",
                "map": "dscp", "option_type": str(OPTION_TYPE)}))
    instance.set_settings(topo.prefix, [f"apn.id0={ID_BASE | PORTS[0]}", f"apn.value0={EF}"])
    topo.warm_up()
    source = ApnSource(OPTION_TYPE)
    try:
        source.attach(topo.ns("sff"), topo.sff_iface)
        _count_dscp(topo, "vnf", "FORWARD", ["-i", "in0"])  # what the function sees
        _count_dscp(topo, "rcv", "INPUT", [])  # what the receiver gets
        pcap = os.path.join(tempfile.mkdtemp(prefix="sfcframe-apn-"), "dec.pcap")
        dump = topo.popen("dec", ["tcpdump", "-i", "eth0", "-U", "-c", "400", "-w", pcap,
                                  "ip6 and dst " + topo.options.egress_sid],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(dump)
        time.sleep(1)
        receiver = srv6_plan.RCV4
        for port in PORTS:
            procs.append(topo.popen("rcv", ["iperf3", "-s", "-1", "-p", str(port), "-B",
                                            receiver], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        clients = [topo.popen("snd", ["iperf3", "-c", receiver, "-p", str(port), "-t",
                                      str(SECONDS), "-S", str(TOS), "-J"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for port in PORTS]
        procs.extend(clients)
        results = [json.loads(c.communicate(timeout=SECONDS + 30)[0]) for c in clients]
        time.sleep(0.5)
        inserted = source.counters()
    finally:
        source.close()
    for result in results:
        assert "error" not in result, result.get("error")
        assert result["end"]["sum_received"]["bytes"] > 100_000

    doc = collect(state.require(topo.prefix))
    ingress, egress = doc["counters"]["ingress"], doc["counters"]["egress"]
    assert ingress["cached"] > 1000 and egress["not_cached"] == 0, (ingress, egress)
    assert egress["restored"] == ingress["cached"], (ingress, egress)
    counts = doc["labelled_counters"]["stage_apn_ids"]["counts"]
    ids = {f"0x{ID_BASE | port:08x}": port for port in PORTS}
    assert set(ids) <= set(counts), counts
    assert counts["other"]["packets"] == 0
    assert sum(c["packets"] for c in counts.values()) == ingress["cached"], counts
    with_apn = sum(counts[i]["packets"] for i in ids)
    assert inserted["failed"] == 0 and 0.99 * inserted["inserted"] <= with_apn <= inserted[
        "inserted"], (inserted, counts)
    for label in ids:
        assert counts[label]["bytes"] > 100_000 and counts[label]["packets"] > 100
    stage = doc["extra_counters"]["stage_apn_counters"]
    mapped = counts[f"0x{ID_BASE | PORTS[0]:08x}"]["packets"]
    assert stage["mapped"] == mapped and stage["undone"] == mapped and stage["kept"] == 0

    # the function's QoS saw EF on stream 1, CS1 on stream 2 (iperf3's control connection
    # to the same port keeps TOS 0: hence "at least 99.9 %")
    assert _iptables_count(topo, "vnf", "FORWARD", EF) == mapped
    plain_stream = counts[f"0x{ID_BASE | PORTS[1]:08x}"]["packets"]
    assert _iptables_count(topo, "vnf", "FORWARD", TOS >> 2) >= 0.999 * plain_stream
    # the receiver got every packet back with its own DSCP, headers intact
    assert _iptables_count(topo, "rcv", "INPUT", EF) == 0
    assert _iptables_count(topo, "rcv", "INPUT", TOS >> 2) >= 0.999 * ingress["cached"]
    snmp = topo.snmp("rcv")
    assert snmp.get("IpInHdrErrors", 0) == 0 and snmp.get("TcpInCsumErrors", 0) == 0, snmp

    # the decapsulating node got the APN header back byte for byte
    if dump.poll() is None:
        dump.send_signal(2)  # SIGINT: tcpdump writes what it has and ends
        dump.wait(timeout=10)
    seen = parse_pcap(pcap, topo.options.egress_sid, OPTION_TYPE)
    assert len(seen) > 100, len(seen)
    for port, hbh, tos in seen:
        assert hbh == hbh_of(port, OPTION_TYPE), (port, hbh.hex())
        assert tos >> 2 != EF  # the mapping never leaves the function's host
    assert sum(tos == TOS for _, _, tos in seen) >= 0.9 * len(seen)

    # sfcframe stats --prometheus: one sample per APN ID, labelled apn_id
    prom = subprocess.run([sys.executable, "-m", "sfcframe", "stats", topo.prefix,
                           "--prometheus"], capture_output=True, text=True, timeout=60)
    assert prom.returncode == 0, prom.stderr
    for label in ids:
        line = next(ln for ln in prom.stdout.splitlines()
                    if ln.startswith("sfcframe_stage_labelled_packets_total")
                    and f'apn_id="{label}"' in ln)
        assert float(line.rsplit(" ", 1)[1]) == counts[label]["packets"]
