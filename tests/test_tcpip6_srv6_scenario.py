"""The tcpip key over inner IPv6 with real TCP: the kernel's H.Encaps at the SFF,
sfcframe's srv6 proxy with ``--key tcpip`` on the VNF host (the demo adds
``family=ipv6`` for inner IPv6), a forwarding VNF, the kernel's End.DT6 at the
decapsulating node; every SRv6 packet checked field by field before the kernel
decapsulates it (SRV6-TESTBED.md). Namespaces ``sfcd-t<hex>-*``, removed even when
a test fails (conftest's scenario fixture)."""

from __future__ import annotations

import os

import pytest

from sfcframe.demo import srv6_plan as plan

pytestmark = pytest.mark.kernel

NCPU = os.cpu_count() or 1
DT6 = f"dec End.DT6 {plan.SID_DT6}"


def test_tcpip_key_inner_ipv6_every_packet_restored(scenario):
    """The demo's default TC ingress. (With ``--ingress xdp`` this testbed's End.DT6
    counts a few hundred errors per run whatever the key, also metadata and IPv4:
    not a check of the key.)"""
    s = scenario(encap="srv6", sf="proxy", inner="ipv6", key="tcpip")
    assert s.config["key"] == "tcpip"
    assert "key=tcpip(family=ipv6)" in s.config["proxy_spec"], s.config["proxy_spec"]
    assert s.passed, s.reasons()
    assert s.teardown.get("clean"), s.teardown
    assert not s.stream_errors, s.stream_errors
    # no packet with a wrong header, none without one, no egress miss
    assert s.checker["mismatch"] == 0 and s.checker["malformed"] == 0, (s.fields, s.mismatch_samples)
    assert s.checker["unencapsulated"] == 0
    assert s.misses == 0
    assert s.ingress.get("no_key", 0) == 0 and s.ingress.get("malformed", 0) == 0, s.ingress
    assert s.checker["match"] > 10_000
    # what the proxy cached it restored, and every restored packet was checked, decapsulated
    # by the kernel and received
    assert s.cached == s.restored == s.checked, (s.cached, s.restored, s.checked)
    assert s.kernel_errors == s.downstream_dropped, (s.kernel, s.downstream_dropped)
    assert s.kernel[DT6]["packets"] + s.decap_errors == s.checked
    assert s.receiver_tcp_in == s.kernel[DT6]["packets"]
    # the return direction (plain IPv6 ACKs) was keyed and passed as plain
    assert s.ingress.get("plain", 0) > 0 and s.egress.get("plain", 0) == s.ingress["plain"]
    if NCPU >= 2:
        assert sum(1 for x in s.checker_per_cpu["match"] if x > 0) >= 2, s.checker_per_cpu


def test_demo_gives_the_tcpip_key_the_inner_family():
    """Pure Python: --key tcpip with --inner ipv6 adds family=ipv6; --param wins; inner
    IPv4 and the metadata key get no family; --key auto keeps its choice."""
    from sfcframe.demo.run import DemoConfig
    from sfcframe.demo.srv6_run import proxy_params, srv6_key

    def params(**kwargs):
        return proxy_params(DemoConfig(encap="srv6", **kwargs))

    assert params(inner="ipv6", key="tcpip")["family"] == "ipv6"
    assert params(inner="ipv6", key="tcpip", params={"family": "any"})["family"] == "any"
    assert "family" not in params(inner="ipv4", key="tcpip")
    assert "family" not in params(inner="ipv6", key="metadata")
    assert srv6_key(DemoConfig(encap="srv6", inner="ipv6")) == "metadata"
    assert "family" not in params(inner="ipv6")
