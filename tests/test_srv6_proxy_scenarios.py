"""The srv6 proxy between two SRv6 implementations we did not write.

The SFF encapsulates with the kernel's H.Encaps (optionally with its HMAC TLV),
the decapsulating node runs the kernel's End.DX4 / End.DT6 (requiring the HMAC
when it is on), and sfcframe's End.AD proxy sits on the VNF host with a legacy
function behind it: real TCP, every SRv6 packet checked field by field before
the kernel decapsulates it (SRV6-TESTBED.md), the kernel's own counters and the
receiver's TCP counting what got through.
"""

from __future__ import annotations

import os

import pytest

from sfcframe.demo import srv6_plan as plan

pytestmark = pytest.mark.kernel

NCPU = os.cpu_count() or 1


@pytest.fixture
def proxied(scenario):
    """SRv6 demo runs with sfcframe's proxy on the VNF host (nothing left behind)."""
    return lambda **kwargs: scenario(encap="srv6", sf="proxy", **kwargs)


def assert_every_packet_restored(s, decap: str):
    assert s.passed, s.reasons()
    assert s.teardown.get("clean"), s.teardown
    assert not s.stream_errors, s.stream_errors
    assert s.checker["mismatch"] == 0 and s.checker["malformed"] == 0, (s.fields, s.mismatch_samples)
    assert s.checker["unencapsulated"] == 0
    assert s.misses == 0
    assert s.checker["match"] > 10_000
    # every packet the proxy restored was checked, decapsulated by the kernel and received
    assert s.checked == s.restored, (s.checked, s.restored)
    # a seg6local route counts a drop by the next veth (backlog full) as its error
    assert s.kernel_errors == s.downstream_dropped, (s.kernel, s.downstream_dropped)
    assert s.kernel[decap]["packets"] + s.decap_errors == s.checked
    assert s.receiver_tcp_in == s.kernel[decap]["packets"]
    if NCPU >= 2:
        assert sum(1 for x in s.checker_per_cpu["match"] if x > 0) >= 2, s.checker_per_cpu


DX4 = f"dec End.DX4 {plan.SID_DX4}"
DT6 = f"dec End.DT6 {plan.SID_DT6}"


def test_ipv4_inner_tcpip_key(proxied):
    s = proxied(inner="ipv4")
    assert s.config["key"] == "tcpip"
    assert_every_packet_restored(s, DX4)
    assert s.stamped == s.cached == s.restored


def test_ipv6_inner_metadata_key(proxied):
    s = proxied(inner="ipv6")
    assert s.config["key"] == "metadata"
    assert_every_packet_restored(s, DT6)
    assert s.stamped == s.cached == s.restored


def test_kernel_hmac_accepts_every_restored_header(proxied):
    """The receiving node requires the HMAC (seg6_require_hmac=1): a restored SRH that
    differed by one covered byte from what the SFF signed would be dropped there."""
    s = proxied(inner="ipv4", hmac=True)
    assert_every_packet_restored(s, DX4)
    assert s.stamped == s.cached == s.restored


def test_kernel_hmac_drops_what_the_proxy_restores_from_a_corrupted_packet(proxied):
    """The control: the SFF's stamper flips a covered segment bit after the HMAC was
    computed; the proxy restores exactly what it got, and the kernel drops every packet."""
    s = proxied(inner="ipv4", hmac=True, corrupt=True)
    assert s.sff["corrupted"] > 0 and s.restored > 0 and s.misses == 0
    assert s.checker["match"] == 0 and s.fields["segments"] == s.checked
    assert s.kernel[DX4]["errors"] == s.checked and s.kernel[DX4]["packets"] == 0
    assert s.receiver_tcp_in == 0
    assert s.teardown.get("clean"), s.teardown


def test_in_kernel_nat_with_the_metadata_key(proxied):
    s = proxied(inner="ipv4", vnf="nat")
    assert s.config["key"] == "metadata"
    assert_every_packet_restored(s, DX4)


def test_dropping_function_loses_entries_not_headers(proxied):
    s = proxied(inner="ipv6", vnf="drop", hmac=True)
    assert s.checker["mismatch"] == 0 and s.misses == 0, s.reasons()
    assert 0.97 < s.restored / s.cached < 0.995, (s.restored, s.cached)
    assert s.cached - s.restored == s.vnf["dropped"]
    assert s.checked == s.restored
    assert s.kernel[DT6]["packets"] + s.decap_errors == s.checked
    assert s.teardown.get("clean"), s.teardown
