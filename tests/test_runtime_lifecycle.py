"""up / stats / set / list / down on a real veth pair in a real namespace.

Each test gets its own namespace and unique instance names; the fixture stops
and removes everything even when the test fails (fixtures/netns.py).
"""

from __future__ import annotations

import json
import re
import signal
import struct
import subprocess
import time

import pytest
from fixtures.netns import (
    SFCFRAME,
    VETH,
    Testbed,
    assert_no_trace,
    last_line,
    mpls_frame,
    pin_path,
    sfc,
)

from sfcframe.runtime import attach, instance, offloads, pins, state
from sfcframe.runtime.config import UpRequest
from sfcframe.runtime.errors import AttachError

pytestmark = pytest.mark.kernel

WATCHED = (*offloads.MERGING, *offloads.OBSERVED)


def offload_values(bed: Testbed, ifname: str) -> dict[str, str]:
    found = bed.features(ifname)
    return {name: found[name] for name in WATCHED if name in found}


def stats_json(name: str) -> dict:
    proc = sfc("stats", name, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_two_armed_up_stats_set_list_down(bed):
    name = bed.instance()
    for ifname in VETH:
        bed.set_features(ifname, gro="on")
    before = {ifname: offload_values(bed, ifname) for ifname in VETH}

    proc = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "va",
               "--iface", "vb", "--netns", bed.ns, "--cache-size", "4096")
    assert proc.returncode == 0, proc.stderr
    assert f"{name} up: mpls/tcpip on va (xdp native, tc egress), vb (xdp native" in proc.stdout

    record = json.loads(state.state_path(name).read_text())
    assert record["status"] == "up"
    ingress_id = record["programs"]["sfc_ingress"]["prog_id"]
    egress_id = record["programs"]["sfc_egress"]["prog_id"]
    for ifname in VETH:
        assert [(x["mode"], x["id"]) for x in bed.xdp(ifname)] == [("driver", ingress_id)]
        assert [(t["kind"], t["id"]) for t in bed.tc(ifname)] == [("clsact/egress", egress_id)]
        assert bed.features(ifname)["generic-receive-offload"] == "off"
        shown = bed.run("tc", "filter", "show", "dev", ifname, "egress").stdout
        assert f"pref {attach.PRIO}" in shown and f"handle {attach.HANDLE:#x}" in shown
    for map_name in ("sfc_cache", "sfc_ingress_counters", "sfc_egress_counters", "sfc_settings"):
        assert pin_path(name, "maps", map_name).exists()
    for function in ("sfc_ingress", "sfc_egress"):
        assert pin_path(name, "progs", function).exists()
    iface = record["interfaces"][0]
    assert iface["offloads_changed"] == {"generic-receive-offload": "on"}
    assert iface["clsact_created"] is True

    # a second `up` of the same name, and another instance on a held interface
    again = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "va",
                "--netns", bed.ns)
    assert again.returncode == 1 and "already running" not in again.stdout
    assert last_line(again) == (
        f"sfcframe: {name}: an instance of that name is running (`sfcframe down {name}` first)"
    )
    other = bed.instance()
    held = sfc("up", "--name", other, "--encap", "mpls", "--key", "tcpip", "--iface", "vb",
               "--netns", bed.ns)
    assert held.returncode == 1
    assert f"XDP program id {ingress_id}" in last_line(held) and f"instance {name}" in last_line(held)
    assert_no_trace(other)

    # one real frame: out of va, into vb's XDP ingress, cached there
    bed.send("va", mpls_frame())
    deadline = time.monotonic() + 5
    while True:
        doc = stats_json(name)  # a new process reading the pinned maps
        if doc["counters"]["ingress"]["cached"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert doc["counters"]["ingress"]["cached"] == 1
    assert doc["cache"]["entries"] == 1 and doc["cache"]["capacity"] == 4096
    assert doc["cache"]["key_size"] == 24 and doc["cache"]["memlock_bytes"] > 4096 * 64
    assert doc["map_memory_bytes"] >= doc["cache"]["memlock_bytes"]
    assert set(doc["counters"]["egress"]) == set(record["egress_outcomes"])
    assert [i["xdp_mode"] for i in doc["interfaces"]] == ["native", "native"]
    assert all(i["ok"] for i in doc["interfaces"]) and doc["status"] == "up"
    assert doc["settings"] == {"strict": False, "source": "settings map"}

    prom = sfc("stats", name, "--prometheus")
    assert prom.returncode == 0, prom.stderr
    assert "# TYPE sfcframe_ingress_packets_total counter" in prom.stdout
    assert (f'sfcframe_ingress_packets_total{{ingress_hook="xdp",mode="cache",outcome="cached",'
            f'proxy="{name}"}} 1.0') in prom.stdout
    assert f'sfcframe_cache_entries{{cache="lru",proxy="{name}"}} 1.0' in prom.stdout
    assert f'sfcframe_cache_capacity{{cache="lru",proxy="{name}"}} 4096.0' in prom.stdout
    assert f'sfcframe_map_memory_bytes{{map="sfc_cache",proxy="{name}"}}' in prom.stdout
    sample = re.compile(r'^[a-z_]+\{([a-z_]+="[^"]*",?)+\} [0-9.e+]+$')
    for line in prom.stdout.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line

    # runtime settings, written into the pinned sfc_settings map
    proc = sfc("set", name, "strict=true")
    assert proc.returncode == 0 and "strict=true" in proc.stdout, proc.stderr
    settings = pins.open_map(pin_path(name, "maps", "sfc_settings"))
    try:
        assert settings.lookup(struct.pack("=I", 0)) == struct.pack("=II", 1, 1)
    finally:
        settings.close()
    assert stats_json(name)["settings"]["strict"] is True
    bad = sfc("set", name, "strict=maybe")
    assert bad.returncode == 2 and "use true, false or default" in last_line(bad)

    listed = sfc("list", "--json")
    assert listed.returncode == 0, listed.stderr
    row = {r["name"]: r for r in json.loads(listed.stdout)["instances"]}[name]
    assert row["encap"] == "mpls" and row["key"] == "tcpip" and row["netns"] == bed.ns
    assert [(i["name"], i["xdp_mode"], i["ok"]) for i in row["interfaces"]] == [
        ("va", "native", True), ("vb", "native", True)]
    assert name in sfc("list").stdout

    # --watch prints until Ctrl-C, which exits 0
    watch = subprocess.Popen([*SFCFRAME, "stats", name, "--json", "--watch", "0.2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = [watch.stdout.readline(), watch.stdout.readline()]  # two documents, however slow
    watch.send_signal(signal.SIGINT)
    out, err = watch.communicate(timeout=10)
    assert watch.returncode == 0, err
    docs = [json.loads(line) for line in [*first, *out.splitlines()] if line.strip()]
    assert len(docs) >= 2 and all(d["name"] == name for d in docs)

    proc = sfc("down", name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"{name} down")
    assert_no_trace(name)
    for ifname in VETH:
        bed.assert_clean(ifname)
        assert offload_values(bed, ifname) == before[ifname]
    again = sfc("down", name)
    assert again.returncode == 0 and again.stdout.strip() == f"{name}: not running"


def test_one_armed_from_config_generic_mode_keeps_foreign_clsact(bed, tmp_path):
    name = bed.instance()
    assert bed.run("tc", "qdisc", "add", "dev", "va", "clsact").returncode == 0
    config = tmp_path / "proxy.toml"
    config.write_text(
        f'name = "{name}"\nencap = "mpls"\nkey = "tcpip"\ninterfaces = ["vb"]\n'
        f'netns = "{bed.ns}"\ncache_size = 2048\nxdp_mode = "generic"\n\n'
        "[params]\nmax_labels = 4\n"
    )
    # flags override the file: the interface and the cache size
    proc = sfc("up", "--config", str(config), "--iface", "va", "--cache-size", "1024")
    assert proc.returncode == 0, proc.stderr
    assert "warning: va" in proc.stdout and "generic XDP on a veth" in proc.stdout

    doc = stats_json(name)
    assert [i["name"] for i in doc["interfaces"]] == ["va"]
    assert doc["interfaces"][0]["xdp_mode"] == "generic"
    assert doc["cache"]["capacity"] == 1024
    assert doc["spec"]["encap"]["params"]["max_labels"] == 4
    assert doc["warnings"]
    assert [x["mode"] for x in bed.xdp("va")] == ["generic"]
    assert bed.xdp("vb") == [] and bed.tc("vb") == []
    record = state.load(name)
    assert record.interfaces[0].clsact_created is False

    proc = sfc("down", name)
    assert proc.returncode == 0, proc.stderr
    assert_no_trace(name)
    bed.assert_clean("va", clsact_expected=True)  # not ours: kept


def _fail_on(ifname: str, monkeypatch) -> None:
    real = attach.attach_xdp

    def attach_xdp(ipr, index, name, netns, fd, mode):
        if name == ifname:
            raise AttachError(f"injected failure on {name}")
        return real(ipr, index, name, netns, fd, mode)

    monkeypatch.setattr(attach, "attach_xdp", attach_xdp)


def test_failure_part_way_rolls_back_everything(bed, monkeypatch):
    name = bed.instance()
    bed.set_features("va", gro="on")
    before = offload_values(bed, "va")
    _fail_on("vb", monkeypatch)  # va is fully attached by then, vb has its TC filter
    request = UpRequest(name, "mpls", "tcpip", ["va", "vb"], netns=bed.ns)
    with pytest.raises(AttachError, match="injected failure on vb"):
        instance.up(request)
    assert_no_trace(name)
    for ifname in VETH:
        bed.assert_clean(ifname)
    assert offload_values(bed, "va") == before


def test_down_cleans_up_after_an_up_that_was_killed(bed, monkeypatch):
    name = bed.instance()
    bed.set_features("va", gro="on")
    before = offload_values(bed, "va")
    _fail_on("vb", monkeypatch)
    monkeypatch.setattr(instance.Undo, "run", lambda self: [])  # as if killed: no roll-back
    with pytest.raises(AttachError):
        instance.up(UpRequest(name, "mpls", "tcpip", ["va", "vb"], netns=bed.ns))
    assert state.load(name).status == "starting"
    assert bed.xdp("va") and state.pin_dir(name).exists()

    proc = sfc("down", name)
    assert proc.returncode == 0, proc.stderr
    assert_no_trace(name)
    for ifname in VETH:
        bed.assert_clean(ifname)
    assert offload_values(bed, "va") == before


def test_keep_offloads_refuses_gro_and_leaves_nothing(bed):
    name = bed.instance()
    bed.set_features("va", gro="on")
    proc = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "va",
               "--netns", bed.ns, "--keep-offloads")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "generic-receive-offload merges stripped packets" in last_line(proc)
    assert f"ip netns exec {bed.ns} ethtool -K va gro off" in last_line(proc)
    assert_no_trace(name)
    bed.assert_clean("va")
    assert bed.features("va")["generic-receive-offload"] == "on"


def test_sigterm_part_way_rolls_back(bed, monkeypatch):
    """SIGTERM (e.g. a supervisor stopping `up`) unwinds like Ctrl-C."""
    import os

    name = bed.instance()
    bed.set_features("vb", gro="on")
    before = offload_values(bed, "vb")
    real = attach.attach_xdp

    def attach_xdp(ipr, index, ifname, netns, fd, mode):
        used = real(ipr, index, ifname, netns, fd, mode)
        if ifname == "vb":
            os.kill(os.getpid(), signal.SIGTERM)  # after the last attach: everything is done
        return used

    monkeypatch.setattr(attach, "attach_xdp", attach_xdp)
    with pytest.raises(KeyboardInterrupt):
        instance.up(UpRequest(name, "mpls", "tcpip", ["va", "vb"], netns=bed.ns))
    assert_no_trace(name)
    for ifname in VETH:
        bed.assert_clean(ifname)
    assert offload_values(bed, "vb") == before
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_entering_a_namespace_moves_this_thread_only_and_comes_back(bed):
    """netns.entered (pyroute2's setns): the body runs in the namespace, in the
    main thread or another one, and each comes back to its own; a missing
    namespace is refused, never created."""
    import os
    import threading

    from pyroute2 import IPRoute

    from sfcframe.runtime import netns

    def here() -> int:
        return os.stat("/proc/thread-self/ns/net").st_ino

    def visit(out: dict) -> None:
        out["home"] = here()
        with netns.entered(bed.ns):
            out["inside"] = here()
            with IPRoute() as ipr:
                out["links"] = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        out["after"] = here()

    in_main: dict = {}
    visit(in_main)
    in_thread: dict = {}
    worker = threading.Thread(target=visit, args=(in_thread,))
    worker.start()
    worker.join()
    for seen in (in_main, in_thread):
        assert seen["inside"] == netns.identity(bed.ns) != seen["home"] == seen["after"]
        assert set(VETH) <= seen["links"]
    missing = f"{bed.ns}-missing"
    with pytest.raises(AttachError, match="not found"), netns.entered(missing):
        pass
    assert missing not in netns.named() and here() == in_main["home"]


@pytest.mark.parametrize("gro", ["on", "off"])
def test_offload_features_read_as_ethtool_shows_them(bed, gro):
    """offloads.read (pyroute2's ethtool, in the namespace) against the ethtool
    binary's ``-k`` output: every watched feature's value, and [fixed] for the
    merging ones; _set switches one and back."""
    for ifname in VETH:
        bed.set_features(ifname, gro=gro)
    for ifname in VETH:
        shown = bed.run("ethtool", "-k", ifname).stdout
        expected = {}
        for line in shown.splitlines():
            name, _, rest = line.strip().partition(":")
            if name in WATCHED and rest.split():
                expected[name] = (rest.split()[0], "[fixed]" in rest)
        found = offloads.read(bed.ns, ifname)
        assert {n: v for n, (v, _) in found.items()} == {n: v for n, (v, _) in expected.items()}
        assert {n: found[n] for n in offloads.MERGING if n in found} == {
            n: expected[n] for n in offloads.MERGING if n in expected}
        assert found["generic-receive-offload"] == (gro, False)
    flipped = "off" if gro == "on" else "on"
    offloads._set(bed.ns, "va", {"generic-receive-offload": flipped})
    assert bed.features("va")["generic-receive-offload"] == flipped
    assert bed.features("vb")["generic-receive-offload"] == gro
    offloads._set(bed.ns, "va", {"generic-receive-offload": gro})
    assert bed.features("va")["generic-receive-offload"] == gro
    with pytest.raises(AttachError, match="offload features of nosuch in netns .*: [Nn]o such device"):
        offloads.read(bed.ns, "nosuch")
