"""Runtime safety: an instance never touches what it does not own, and one broken
instance breaks nothing else (issue 8).

Every test runs the real ``sfcframe`` CLI against real attachments in namespaces
of its own (fixtures/netns.py, fixtures/hairpin.py), removed even when it fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from fixtures.hairpin import hairpin, labels_of  # noqa: F401 - hairpin is a fixture
from fixtures.netns import (
    SFCFRAME,
    VETH,
    Testbed,
    assert_no_trace,
    pin_path,
    sfc,
)

from sfcframe.runtime import offloads, state

pytestmark = pytest.mark.kernel

GRO = "generic-receive-offload"
WATCHED = (*offloads.MERGING, *offloads.OBSERVED)


# ---- helpers ----------------------------------------------------------------------
def up(bed: Testbed, name: str, *ifaces: str, extra: tuple[str, ...] = (), **kw):
    args = ["up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--netns", bed.ns]
    for ifname in ifaces:
        args += ["--iface", ifname]
    return sfc(*args, *extra, **kw)


def up_ok(bed: Testbed, name: str, *ifaces: str, extra: tuple[str, ...] = ()) -> None:
    proc = up(bed, name, *ifaces, extra=extra)
    assert proc.returncode == 0, proc.stderr


def attachments(bed: Testbed, ifname: str) -> list[tuple[str, int]]:
    """Every BPF attachment of an interface as (hook, program id)."""
    found = [(x["mode"], x["id"]) for x in bed.xdp(ifname)]
    return sorted(found + [(t["kind"], t["id"]) for t in bed.tc(ifname)])


def offload_values(bed: Testbed, ifname: str, watched=WATCHED) -> dict[str, str]:
    found = bed.features(ifname)
    return {name: found[name] for name in watched if name in found}


def stats_json(*args: str) -> dict:
    proc = sfc("stats", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_one_line(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sfcframe: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def add_veth(bed: Testbed, left: str, right: str) -> None:
    with bed.ipr() as ipr:
        ipr.link("add", ifname=left, kind="veth", peer=right)
        for name in (left, right):
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")


def foreign_tc_filter(bed: Testbed, ifname: str, prio: int) -> int:
    """A TC egress filter nobody in sfcframe made; returns its program id."""
    from sfcframe.loader import bcc_module

    bcc = bcc_module()
    module = bcc.BPF(text=b"int pass_all(struct __sk_buff *skb) { return 0; }")
    try:
        fn = module.load_func(b"pass_all", bcc.BPF.SCHED_CLS)
        with bed.ipr() as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            if "clsact" not in bed.qdiscs(ifname):
                ipr.tc("add", "clsact", index=index)
            ipr.tc("add-filter", "bpf", index=index, fd=fn.fd, name="pass_all",
                   parent=0xFFFFFFF3, prio=prio, handle=1, classid=1, direct_action=True)
    finally:
        module.cleanup()  # the filter keeps the program
    (entry,) = [t for t in bed.tc(ifname) if t["name"] == "pass_all"]
    return entry["id"]


def send_through(bed, first_seq: int, count: int) -> list[list[int]]:
    """``count`` frames with labels (100+i, 200+i) through the hairpin; the stacks that came back."""
    frames = [bed.encapsulated([100 + i, 200 + i], seq=first_seq + i) for i in range(count)]
    return sorted(labels_of(g) for g in bed.exchange(frames, expect=count))


def assert_restores_everything(name: str, sent: int) -> None:
    doc = stats_json(name)
    ingress, egress = doc["counters"]["ingress"], doc["counters"]["egress"]
    assert ingress["cached"] == egress["restored"] == sent, (ingress, egress)
    assert egress["not_cached"] == 0 and doc["cache"]["entries"] == 0


# ---- 1. a failed `up` on an interface another instance proxies ---------------------
@pytest.mark.parametrize("first, second", [("tc", "xdp"), ("xdp", "tc")])
def test_second_instance_on_one_interface_leaves_the_first_alone(hairpin, first, second):
    bed = hairpin
    a, b = bed.instance(), bed.instance()
    up_ok(bed, a, "va", extra=("--ingress", first))
    before = attachments(bed, "va")

    proc = up(bed, b, "va", extra=("--ingress", second))
    assert proc.returncode == 1
    assert attachments(bed, "va") == before  # a's filters and programs, untouched
    assert_no_trace(b)
    assert_one_line(proc, 1, "va", f"sfcframe instance {a}")

    assert send_through(bed, 7000, 5) == [[200 + i] for i in range(5)]
    assert_restores_everything(a, 5)


# ---- 2. `down` after the interface was deleted and created again -------------------
def test_down_after_the_interface_was_recreated_leaves_the_new_owner_alone(bed):
    a, b = bed.instance(), bed.instance()
    bed.set_features("vb", gro="on")
    up_ok(bed, a, "vb")
    with bed.ipr() as ipr:
        ipr.link("del", index=ipr.link_lookup(ifname="va")[0])
    add_veth(bed, *VETH)
    bed.set_features("vb", gro="on")
    up_ok(bed, b, "vb")
    owned_by_b = attachments(bed, "vb")

    proc = sfc("down", a)
    assert proc.returncode == 0, proc.stderr
    assert attachments(bed, "vb") == owned_by_b
    assert "clsact" in bed.qdiscs("vb")
    assert bed.features("vb")[GRO] == "off"  # b switched it off; a must not switch it on
    assert "vb" in proc.stdout and "not the interface" in proc.stdout
    assert_no_trace(a)
    doc = stats_json(b)
    assert doc["status"] == "up" and all(i["ok"] for i in doc["interfaces"])


# ---- 3. the state record is not trusted blindly --------------------------------------
def _rewrite_record(name: str, change) -> None:
    path = state.state_path(name)
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))  # the file keeps its owner and mode


def test_down_derives_every_path_from_the_name(bed, tmp_path):
    a = bed.instance()
    up_ok(bed, a, "vb")
    victim = tmp_path / "victim"
    (victim / "maps").mkdir(parents=True)
    (victim / "maps" / "sfc_cache").write_text("precious")

    def point_elsewhere(doc):
        doc["pin_dir"] = str(victim)
        doc["maps"] = {m: str(victim / "maps" / m) for m in doc["maps"]}
        for prog in doc["programs"].values():
            prog["pin"] = str(victim / "progs" / "x")

    _rewrite_record(a, point_elsewhere)
    proc = sfc("down", a)
    assert proc.returncode == 0, proc.stderr
    assert (victim / "maps" / "sfc_cache").read_text() == "precious"
    assert_no_trace(a)
    bed.assert_clean("vb")


@pytest.mark.parametrize("tamper", ["group-writable", "not-root"])
def test_down_refuses_a_record_others_could_have_written(bed, tamper):
    a = bed.instance()
    up_ok(bed, a, "vb")
    path = state.state_path(a)
    if tamper == "group-writable":
        os.chmod(path, 0o664)
    else:
        os.chown(path, 65534, 65534)
    proc = sfc("down", a)
    assert_one_line(proc, 1, str(path), "refus")
    assert bed.xdp("vb") and bed.tc("vb") and state.pin_dir(a).exists()  # nothing done
    listed = {r["name"]: r for r in json.loads(sfc("list", "--json").stdout)["instances"]}
    assert listed[a]["status"] == "damaged" and str(path) in listed[a]["reason"]

    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    proc = sfc("down", a)
    assert proc.returncode == 0, proc.stderr
    assert_no_trace(a)
    bed.assert_clean("vb")


def test_state_and_pins_get_private_modes_whatever_the_umask(bed):
    a = bed.instance()
    proc = up(bed, a, "vb", prefix=["sh", "-c", 'umask 000; exec "$@"', "sh"])
    assert proc.returncode == 0, proc.stderr
    mode = lambda path: os.lstat(path).st_mode & 0o7777  # noqa: E731
    assert mode(state.state_dir()) == 0o700 and mode(state.state_path(a)) == 0o600
    assert mode(state.pin_root()) == 0o700
    pins = state.pin_dir(a)
    assert mode(pins) == mode(pins / "maps") == mode(pins / "progs") == 0o700
    pinned = [p for sub in ("maps", "progs") for p in (pins / sub).iterdir()]
    assert pinned and {mode(p) for p in pinned} == {0o600}
    assert sfc("down", a).returncode == 0


# ---- 4. build -o never writes through a symlink ----------------------------------
def test_build_output_never_follows_a_planted_symlink(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.h"
    victim.write_text("precious\n")
    (out / "sfc_proxy.h").symlink_to(victim)
    (out / "sfc_ingress.c").symlink_to(tmp_path / "created-elsewhere.c")  # dangling
    proc = sfc("build", "--encap", "mpls", "--key", "tcpip", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "created-elsewhere.c").exists()
    for name in ("sfc_proxy.h", "sfc_ingress.c", "sfc_egress.c", "sfc_proxy.c"):
        path = out / name
        assert not path.is_symlink() and "DO NOT EDIT" in path.read_text()
    assert sorted(p.name for p in out.iterdir()) == [
        "sfc_egress.c", "sfc_ingress.c", "sfc_proxy.c", "sfc_proxy.h"]  # no temporaries left


# ---- 5. the state record is lost: `down` works from the pins -----------------------
def test_down_without_a_record_removes_what_the_pins_attached(bed):
    a = bed.instance()
    for ifname in VETH:
        bed.set_features(ifname, gro="on")
    before = {ifname: offload_values(bed, ifname) for ifname in VETH}
    up_ok(bed, a, "va", "vb")
    state.state_path(a).unlink()
    listed = {r["name"]: r for r in json.loads(sfc("list", "--json").stdout)["instances"]}
    assert listed[a]["status"] == "damaged" and "no state record" in listed[a]["reason"]

    proc = sfc("down", a)
    assert proc.returncode == 0, proc.stderr
    assert "XDP (native) detached" in proc.stdout and "offloads restored" in proc.stdout
    assert_no_trace(a)
    for ifname in VETH:
        bed.assert_clean(ifname)
        assert offload_values(bed, ifname) == before[ifname]
    up_ok(bed, a, "va")  # the name is free again


def test_down_without_record_or_undo_copy_says_what_it_could_not_restore(bed):
    a = bed.instance()
    bed.set_features("vb", gro="on")
    foreign = foreign_tc_filter(bed, "vb", prio=1)
    up_ok(bed, a, "vb")
    state.state_path(a).unlink()
    pin_path(a, "undo").unlink(missing_ok=True)

    proc = sfc("down", a)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{GRO}" in proc.stderr and "previous value unknown" in proc.stderr
    assert f"ip netns exec {bed.ns} ethtool -K vb" in proc.stderr
    assert bed.xdp("vb") == []
    assert [(t["name"], t["id"]) for t in bed.tc("vb")] == [("pass_all", foreign)]
    assert "clsact" in bed.qdiscs("vb")
    assert_no_trace(a)


# ---- 6. one damaged instance, the others still reported ------------------------------
def test_one_damaged_instance_breaks_no_other(bed):
    a, b = bed.instance(), bed.instance()
    bed.set_features("va", gro="on")
    # the merging ones: native XDP on vb (b) switches TSO off on its peer va meanwhile
    before = offload_values(bed, "va", offloads.MERGING)
    up_ok(bed, a, "va")
    up_ok(bed, b, "vb")

    def check_reports(reason: str, every_command: bool) -> None:
        listed = sfc("list", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {r["name"]: r for r in json.loads(listed.stdout)["instances"]}
        assert rows[a]["status"] == "damaged" and reason in rows[a]["reason"]
        assert rows[b]["status"] == "up"
        docs = {d["name"]: d for d in stats_json()["instances"]}
        assert docs[a]["status"] == "damaged" and reason in docs[a]["reason"]
        assert docs[b]["status"] == "up" and "ingress" in docs[b]["counters"]
        prom = sfc("stats", "--prometheus")
        assert prom.returncode == 0, prom.stderr
        assert f'sfcframe_proxy_damaged{{proxy="{a}"}} 1.0' in prom.stdout
        assert f'sfcframe_proxy_damaged{{proxy="{b}"}} 0.0' in prom.stdout
        assert f'sfcframe_cache_capacity{{cache="lru",proxy="{b}"}}' in prom.stdout
        assert_one_line(sfc("stats", a), 1, a, "damaged")
        assert sfc("set", b, "strict=true").returncode == 0
        assert_one_line(sfc("set", a, "strict=true"), 1, a, "damaged")
        if not every_command:
            return
        text = sfc("list")
        assert text.returncode == 0 and "damaged" in text.stdout and b in text.stdout
        shown = sfc("stats")
        assert shown.returncode == 0 and "damaged" in shown.stdout, shown.stderr
        observed = sfc("size", "--observe", b, "--seconds", "0.1", "--json")
        assert observed.returncode == 0, observed.stderr
        assert_one_line(sfc("size", "--observe", a, "--seconds", "0.1"), 1, a, "damaged")

    for pinned in pin_path(a, "maps").iterdir():  # pins removed by hand
        pinned.unlink()
    check_reports("sfc_cache", every_command=True)
    state.state_path(a).write_text("{not json")  # and a record that is not JSON
    check_reports("not valid JSON", every_command=False)

    proc = sfc("down", a)
    assert proc.returncode == 0, proc.stderr
    assert_no_trace(a)
    bed.assert_clean("va")
    assert offload_values(bed, "va", offloads.MERGING) == before
    assert stats_json(b)["status"] == "up"


# ---- kill -9 of one instance's `up`: the other one keeps restoring ------------------
KILLED_AT_XDP = """
import os, signal, sys
from sfcframe.runtime import attach
attach.attach_xdp = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
from sfcframe.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_mid_up_leaves_the_other_instance_restoring_every_packet(hairpin):
    bed = hairpin
    keep, killed = bed.instance(), bed.instance()
    add_veth(bed, "vc", "vd")
    bed.set_features("vc", gro="on")
    before = offload_values(bed, "vc")
    up_ok(bed, keep, "va")
    sent = 20
    assert len(send_through(bed, 1000, sent)) == sent

    proc = subprocess.run(
        [sys.executable, "-c", KILLED_AT_XDP, "up", "--name", killed, "--encap", "mpls",
         "--key", "tcpip", "--iface", "vc", "--netns", bed.ns],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert state.load(killed).status == "starting" and bed.tc("vc")  # its egress filter is on
    assert bed.features("vc")[GRO] == "off"
    assert len(send_through(bed, 2000, sent)) == sent
    sent *= 2

    cleaning = subprocess.Popen([*SFCFRAME, "down", killed], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    while cleaning.poll() is None:  # traffic while the killed one is cleaned up
        assert send_through(bed, 3000 + sent, 1) == [[200]]
        sent += 1
    out, err = cleaning.communicate()
    assert cleaning.returncode == 0, err
    assert f"{killed} down" in out
    assert_no_trace(killed)
    bed.assert_clean("vc")
    assert offload_values(bed, "vc") == before
    assert send_through(bed, 9000, 5) == [[200 + i] for i in range(5)]
    assert_restores_everything(keep, sent + 5)
    assert stats_json(keep)["status"] == "up"


def test_up_refuses_a_foreign_filter_at_our_priority(bed):
    from sfcframe.runtime import attach

    foreign = foreign_tc_filter(bed, "vb", prio=attach.PRIO)
    name = bed.instance()
    proc = up(bed, name, "vb")
    assert_one_line(proc, 1, f"TC egress prio {attach.PRIO} is taken", f"program id {foreign}",
                    "not an sfcframe instance",
                    f"tc -n {bed.ns} filter del dev vb egress prio {attach.PRIO}")
    assert_no_trace(name)
    assert [(t["name"], t["id"]) for t in bed.tc("vb")] == [("pass_all", foreign)]
    assert bed.xdp("vb") == []
