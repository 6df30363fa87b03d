"""Verification from captures: frames built with scapy (SRv6 with the POT option
in its Hop-by-Hop header, NSH with an IOAM POT header), written to pcap files,
judged by ``sfcframe pot verify``; and ``sfcframe pot profile``'s files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.nsh import NSH
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import (HBHOptUnknown, IPv6, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrSegmentRouting, PadN)
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from sfcframe_pot import option, profile, verify
from sfcframe_pot.arith import P

SFCFRAME = [sys.executable, "-m", "sfcframe"]
#: explicit addresses: scapy would otherwise resolve the destination for every frame
ETH = Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")


def srv6_frame(pot: option.PotOption) -> bytes:
    """An SRv6 packet as the chain end sees it: POT option 8n-aligned (RFC 9486)."""
    hbh = IPv6ExtHdrHopByHop(options=[PadN(optdata=bytes(4)),
                                      HBHOptUnknown(otype=0x31, optdata=b"\x00\x02" + pot.pack())])
    return bytes(ETH / IPv6(src="fc00:1::1", dst="fc00:b::4") / hbh
                 / IPv6ExtHdrSegmentRouting(addresses=["fc00:b::4", "fc00:a::1"], segleft=0)
                 / IP(src="10.0.0.1", dst="10.0.0.2") / TCP())


def nsh_frame(pot: option.PotOption) -> bytes:
    ioam = bytes([option.IOAM_POT, 6, 0, 0x1]) + pot.pack()  # IOAM header, next protocol IPv4
    return bytes(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x894F) / NSH(mdtype=2, length=2, nextproto=0x6) / ioam
                 / IP(src="10.0.0.1", dst="10.0.0.2") / TCP())


def proven(prof: profile.Profile, rnd: int) -> int:
    cml = 0
    for n in prof.nodes:
        cml = n.update(cml, rnd)
    return cml


@pytest.fixture(scope="module")
def prof():
    return profile.generate(3, namespace=0x8FC0)


@settings(max_examples=100, deadline=None)
@given(rnd=st.integers(0, (1 << 64) - 1), nsh=st.booleans())
def test_the_option_is_found_where_scapy_put_it(rnd, nsh):
    pot = option.PotOption(0x8FC0, rnd, rnd ^ 0x5555, option.FLAG_PROFILE)
    frame = (nsh_frame if nsh else srv6_frame)(pot)
    assert option.PotOption.parse(verify.pot_in_frame(frame)) == pot
    if not nsh:  # scapy's own dissection agrees on where the option is; the wire
        # form is compared, since another distribution may register a scapy class
        # for option 0x31 (sfcframe-ioam does) and its field names differ
        opt = bytes(Ether(frame)[IPv6ExtHdrHopByHop].options[1])
        assert opt[0] == 0x31 and opt[4:4 + len(pot.pack())] == pot.pack()


def test_counts_every_outcome(prof, tmp_path):
    ok = [option.PotOption(0x8FC0, r, proven(prof, r)) for r in (1, 2, P + 3)]
    frames = [srv6_frame(ok[0]), nsh_frame(ok[1]), srv6_frame(ok[2]),
              srv6_frame(option.PotOption(0x8FC0, 4, proven(prof, 4) + 1)),   # failed
              srv6_frame(option.PotOption(0x8FC0, 9, proven(prof, 1))),       # another RND's CML
              srv6_frame(ok[0]),                                               # replayed
              srv6_frame(option.PotOption(0x8FC0, 5, 0, option.FLAG_PROFILE)), # other profile
              srv6_frame(option.PotOption(7, 6, 0)),                           # other namespace
              srv6_frame(option.PotOption(0x8FC0, 7, 0, 0, 1)),                # unknown type
              bytes(ETH / IPv6() / TCP()),                                 # no POT
              srv6_frame(ok[0])[:60]]                                          # cut short
    report = verify.verify_frames(frames, prof)
    assert report.counts == {"verified": 3, "failed": 2, "replayed": 1, "other_profile": 1,
                             "other_namespace": 1, "unknown_type": 1, "no_pot": 1,
                             "malformed": 1}
    assert [f[:2] for f in report.failures] == [(4, "failed"), (5, "failed"), (6, "replayed"),
                                               (11, "malformed")]
    assert not report.ok
    path = tmp_path / "end.pcap"
    wrpcap(str(path), [Ether(f) for f in frames])
    assert verify.verify_pcap(path, prof).counts == report.counts


def test_cli_profile_then_verify(tmp_path):
    out = tmp_path / "pot"
    made = subprocess.run([*SFCFRAME, "pot", "profile", "--nodes", "2", "--out", str(out),
                           "--namespace", "0x8fc0", "--json"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["nodes"] == 2 and len(summary["files"]) == 3
    prof = profile.load(out / "profile.json")
    assert str(prof.secret) not in made.stdout
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in summary["files"])

    good = tmp_path / "good.pcap"
    wrpcap(str(good), [Ether(srv6_frame(option.PotOption(0x8FC0, r, proven(prof, r))))
                       for r in range(1, 50)])
    run = subprocess.run([*SFCFRAME, "pot", "verify", "--profile", str(out / "profile.json"),
                          "--pcap", str(good), "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["counts"]["verified"] == 49

    bad = tmp_path / "bad.pcap"
    wrpcap(str(bad), [Ether(srv6_frame(option.PotOption(0x8FC0, 3, proven(prof, 2))))])
    run = subprocess.run([*SFCFRAME, "pot", "verify", "--profile", str(out / "profile.json"),
                          "--pcap", str(bad)], capture_output=True, text=True)
    assert run.returncode == 1
    assert "failed 1" in run.stdout and "1 failed" in run.stderr

    missing = subprocess.run([*SFCFRAME, "pot", "verify", "--profile", str(tmp_path / "no.json"),
                              "--pcap", str(bad)], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no.json" in missing.stderr
    notpcap = subprocess.run([*SFCFRAME, "pot", "verify", "--profile", str(out / "profile.json"),
                              "--pcap", str(out / "profile.json")], capture_output=True, text=True)
    assert notpcap.returncode == 2 and "not a readable pcap" in notpcap.stderr
    refused = subprocess.run([*SFCFRAME, "pot", "profile", "--nodes", "0", "--out", str(out)],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "1..64" in refused.stderr
