"""Proof of transit through real TCP in network namespaces, with the kernel's
SRv6 as the peers: packets that passed the proxy's host verify at the chain
end; packets routed around it, packets through a proxy holding a wrong share,
and packets carrying a proven CML copied onto a new RND fail (the picture:
sfcframe_pot/testbed.py)."""

from __future__ import annotations

import pytest

from sfcframe_pot import verify
from sfcframe_pot.arith import P

from sfcframe_pot.testbed import PotBed, sfc

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    b = PotBed(tmp_path_factory.mktemp("pot-bed"))
    try:
        b.create()
        yield b
    finally:
        left = b.destroy()
        assert not left, left


def counted(bed: PotBed, label: str):
    """One transfer: the capture judged against the profile, the counters that moved."""
    node0, stats0 = bed.node_counters(), bed.proxy_stats()
    pcap, result = bed.transfer(label)
    node1, stats1 = bed.node_counters(), bed.proxy_stats()
    assert "error" not in result, result.get("error")
    assert result["end"]["sum_sent"]["bytes"] >= 3_000_000  # TCP delivered all of it
    pot = stats1["extra_counters"]["stage_pot_counters"]
    pot0 = stats0["extra_counters"]["stage_pot_counters"]
    moved = {k: pot[k] - pot0[k] for k in pot}
    inserted = node1["inserted"] - node0["inserted"]
    assert node1["error"] == node0["error"]
    return verify.verify_pcap(pcap, bed.prof), moved, inserted


def test_packets_through_the_proxy_verify(bed):
    bed.route(bypass=False)
    report, moved, inserted = counted(bed, "through")
    assert report.counts["verified"] > 500, report.counts
    assert report.counts["failed"] == report.counts["replayed"] == 0, report.to_json()
    assert report.counts["malformed"] == report.counts["no_pot"] == 0
    # every packet the SFF sent got its POT option, the proxy updated each once
    assert moved["updated"] == inserted >= report.counts["verified"]
    assert sum(moved.values()) == moved["updated"]


def test_packets_routed_around_the_proxy_host_fail(bed):
    bed.route(bypass=True)
    try:
        report, moved, inserted = counted(bed, "bypass")
    finally:
        bed.route(bypass=False)
    assert report.counts["failed"] > 500 and report.counts["verified"] == 0, report.counts
    assert sum(moved.values()) == 0 and inserted >= report.counts["failed"]


def test_a_proxy_with_a_wrong_share_fails_and_the_right_one_restores_the_proof(bed):
    right = bed.prof.node(2).share
    sfc("set", bed.name, f"pot.share_0={(right + 1) % P}")
    try:
        report, moved, _ = counted(bed, "wrong-share")
    finally:
        sfc("set", bed.name, "--from", str(bed.profile_files[2]))
    assert report.counts["failed"] > 500 and report.counts["verified"] == 0, report.counts
    assert moved["updated"] >= report.counts["failed"]
    again, _, _ = counted(bed, "share-restored")
    assert again.counts["verified"] > 500 and again.counts["failed"] == 0


def test_a_replayed_cml_with_a_new_rnd_fails(bed):
    """An attacker copies the CML of a packet that verified into new packets (new
    RND each) and sends them around the proxy's host."""
    bed.route(bypass=False)
    good, _, _ = counted(bed, "before-replay")
    from scapy.utils import RawPcapReader

    with RawPcapReader(str(bed.workdir / "before-replay.pcap")) as reader:
        for frame, _meta in reader:
            data = verify.pot_in_frame(frame, reader.linktype)
            if data is not None:
                proven = verify.option.PotOption.parse(data)
                break
    assert bed.prof.verifies(proven.cml, proven.rnd) and good.counts["verified"] > 0
    bed.node_settings(replay_cml=proven.cml)
    bed.route(bypass=True)
    try:
        report, _, _ = counted(bed, "replay")
    finally:
        bed.route(bypass=False)
        bed.node_settings()
    assert report.counts["failed"] > 500 and report.counts["verified"] == 0, report.counts
