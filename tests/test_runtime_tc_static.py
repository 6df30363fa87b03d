"""`sfcframe up` with ingress=tc and mode=static on real veths in namespaces.

Topology: the Hairpin testbed (fixtures/hairpin.py): va in the proxy namespace,
its peer vb in a second namespace, both removed in the fixture's finally.
"""

from __future__ import annotations

import json

import pytest
from fixtures.hairpin import hairpin, labels_of  # noqa: F401 - hairpin is a fixture
from fixtures.netns import Testbed, assert_no_trace, last_line, sfc

from sfcframe.encaps.mpls.scapy_layers import label_stack
from sfcframe.runtime import attach, instance, state
from sfcframe.runtime.config import UpRequest
from sfcframe.runtime.errors import AttachError

pytestmark = pytest.mark.kernel


def _ingress_filter(bed: Testbed, ifname: str, prog_id: int):
    """Our filter on clsact ingress as pyroute2 dumps it: at our coordinates, running prog_id."""
    with bed.ipr() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        return attach.find_filter(ipr, index, attach.TC_PARENT["ingress"], attach.PRIO,
                                  attach.HANDLE, {prog_id})


def test_tc_ingress_up_real_packets_down(hairpin):
    bed, name = hairpin, hairpin.instance()
    proc = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "va",
               "--netns", bed.ns, "--ingress", "tc")
    assert proc.returncode == 0, proc.stderr
    assert f"{name} up: mpls/tcpip on va (tc egress, tc ingress)" in proc.stdout

    record = json.loads(state.state_path(name).read_text())
    assert record["programs"]["sfc_ingress"]["hook"] == "tc-ingress"
    assert record["programs"]["sfc_ingress"]["prog_type"] == "sched_cls"
    assert bed.xdp("va") == []  # no XDP at all
    ingress_id = record["programs"]["sfc_ingress"]["prog_id"]
    flt = _ingress_filter(bed, "va", ingress_id)
    assert flt is not None and flt.name == "sfc_ingress" and flt.direction == "ingress"
    kinds = sorted((t["kind"], t["id"]) for t in bed.tc("va"))
    assert kinds == sorted([("clsact/ingress", record["programs"]["sfc_ingress"]["prog_id"]),
                            ("clsact/egress", record["programs"]["sfc_egress"]["prog_id"])])

    # real frames: stripped at TC ingress, forwarded by the kernel, restored at TC egress
    sent = [bed.encapsulated([100 + i, 200 + i, 300 + i], seq=5000 + i) for i in range(3)]
    got = bed.exchange(sent, expect=3)
    assert sorted(labels_of(g) for g in got) == [[200 + i, 300 + i] for i in range(3)]
    for wire in got:
        inner = wire[14 + 8:]
        assert inner[8] == 63  # forwarded: TTL - 1
        assert wire[:6] == bytes.fromhex(bed.vb_mac.replace(":", ""))

    doc = json.loads(sfc("stats", name, "--json").stdout)
    assert doc["ingress_hook"] == "tc" and doc["status"] == "up"
    assert doc["counters"]["ingress"]["cached"] == 3
    assert doc["counters"]["egress"]["restored"] == 3
    assert doc["cache"]["entries"] == 0
    assert doc["programs"]["sfc_ingress"]["hook"] == "tc-ingress"
    (iface,) = doc["interfaces"]
    assert iface["ok"] and iface["xdp_mode"] is None and iface["ingress_hook"] == "tc"
    assert sorted(t["direction"] for t in iface["tc"]) == ["egress", "ingress"]
    text = sfc("stats", name).stdout
    assert "tc egress, tc ingress" in text and "NOT ATTACHED" not in text
    listed = json.loads(sfc("list", "-j").stdout)
    assert listed["schema"] == 1
    (row,) = [r for r in listed["instances"] if r["name"] == name]
    assert row["ingress_hook"] == "tc" and row["interfaces"][0]["ok"]

    proc = sfc("down", name)
    assert proc.returncode == 0, proc.stderr
    assert "va: TC ingress filter deleted" in proc.stdout and "va: clsact deleted" in proc.stdout
    assert_no_trace(name)
    bed.assert_clean("va")
    assert _ingress_filter(bed, "va", ingress_id) is None


def test_tc_ingress_from_config_and_param(hairpin, tmp_path):
    bed, name = hairpin, hairpin.instance()
    config = tmp_path / "proxy.toml"
    config.write_text(f'name = "{name}"\nencap = "mpls"\nkey = "metadata"\ninterfaces = ["va"]\n'
                      f'netns = "{bed.ns}"\ningress = "tc"\n')
    proc = sfc("up", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    record = state.load(name)
    assert record.ingress_hook == "tc" and record.spec["key"]["params"]["carrier"] == "mark"
    assert "sfc_carrier" not in record.programs
    got = bed.exchange([bed.encapsulated([7, 8], seq=1)], expect=1)
    assert [labels_of(g) for g in got] == [[8]]  # metadata key: id carried in skb->mark
    assert sfc("down", name).returncode == 0
    bed.assert_clean("va")
    # --param ingress=tc is the same core parameter; a conflicting flag is refused
    other = bed.instance()
    clash = sfc("up", "--name", other, "--encap", "mpls", "--key", "metadata", "--iface", "va",
                "--netns", bed.ns, "--param", "ingress=tc", "--param", "carrier=data_meta")
    assert clash.returncode == 2 and "carrier=data_meta needs XDP ingress" in last_line(clash)
    assert_no_trace(other)


def test_tc_ingress_attach_failure_rolls_back(hairpin, monkeypatch):
    """The ingress filter is the last step: a failure there undoes everything."""
    bed, name = hairpin, hairpin.instance()
    real = attach.add_filter

    def add_filter(ipr, index, direction, fd, function):
        if direction == "ingress":
            raise AttachError("injected failure on the ingress filter")
        return real(ipr, index, direction, fd, function)

    monkeypatch.setattr(attach, "add_filter", add_filter)
    request = UpRequest(name, "mpls", "tcpip", ["va"], netns=bed.ns, params={"ingress": "tc"})
    with pytest.raises(AttachError, match="injected failure"):
        instance.up(request)
    assert_no_trace(name)
    bed.assert_clean("va")


def test_static_proxy_up_set_header_down(hairpin):
    bed, name = hairpin, hairpin.instance()
    proc = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "va",
               "--netns", bed.ns, "--mode", "static", "--static-header", "100,200")
    assert proc.returncode == 0, proc.stderr
    assert "(static)" in proc.stdout
    got = bed.exchange([bed.encapsulated([1, 2, 3], seq=10)], expect=1)
    assert [labels_of(g) for g in got] == [[100, 200]]  # the whole stack popped, ours pushed

    proc = sfc("set", name, "--static-header", "7,8,9")
    assert proc.returncode == 0, proc.stderr
    assert "static header" in proc.stdout and "(static map)" in proc.stdout
    got = bed.exchange([bed.encapsulated([1], seq=11)], expect=1)
    assert [labels_of(g) for g in got] == [[7, 8, 9]]  # no reload, the next packet has it

    bad = sfc("set", name, "--static-header", "1048576")
    assert bad.returncode == 2 and "outside 0..1048575" in last_line(bad)

    doc = json.loads(sfc("stats", name, "--json").stdout)
    assert doc["mode"] == "static" and doc["cache"] is None
    assert doc["static"]["header"] == label_stack([(7, 0, 64), (8, 0, 64), (9, 0, 64)]).hex()
    assert doc["counters"]["ingress"]["stripped"] == 2
    # every IP frame leaving va gets the header: ours, and the namespace's own (IPv6 ND ...)
    assert doc["counters"]["egress"]["pushed"] >= 2
    text = sfc("stats", name)
    assert text.returncode == 0 and "cache " not in text.stdout and "static   header" in text.stdout
    assert sfc("stats", name, "--prometheus").returncode == 0

    assert sfc("set", name, "--static-header", "default").returncode == 0
    got = bed.exchange([bed.encapsulated([1], seq=12)], expect=1)
    assert [labels_of(g) for g in got] == [[100, 200]]
    cache_proxy = bed.instance()
    refused = sfc("up", "--name", cache_proxy, "--encap", "mpls", "--key", "tcpip", "--iface",
                  "va", "--netns", bed.ns, "--static-header", "1")
    assert refused.returncode == 2 and "only applies to mode=static" in last_line(refused)

    assert sfc("down", name).returncode == 0
    assert_no_trace(name)
    bed.assert_clean("va")
