"""Bad input to up/down/stats/set: one clear line, the right exit code, nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures.netns import VETH, Testbed, assert_no_trace, last_line, sfc, unique

pytestmark = pytest.mark.kernel


def up(bed: Testbed, name: str, *ifaces: str, extra: tuple[str, ...] = (), **kw):
    args = ["up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--netns", bed.ns]
    for ifname in ifaces:
        args += ["--iface", ifname]
    return sfc(*args, *extra, **kw)


def assert_one_line(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sfcframe: ")
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def assert_untouched(bed: Testbed, name: str) -> None:
    assert_no_trace(name)
    for ifname in VETH:
        bed.assert_clean(ifname)


def test_unknown_interface(bed):
    name = bed.instance()
    proc = up(bed, name, "va", "nope0")
    assert_one_line(proc, 1, f"interface nope0 not found in netns {bed.ns}")
    assert_untouched(bed, name)


def test_interface_held_by_another_xdp_program(bed):
    from sfcframe.loader import bcc_module

    bcc = bcc_module()
    foreign = bcc.BPF(text=b"int pass_all(struct xdp_md *ctx) { return XDP_PASS; }")
    try:
        fn = foreign.load_func(b"pass_all", bcc.BPF.XDP)
        with bed.ipr() as ipr:
            index = ipr.link_lookup(ifname="vb")[0]
            ipr.link("set", index=index, xdp_fd=fn.fd)
        foreign_id = bed.xdp("vb")[0]["id"]
        name = bed.instance()
        proc = up(bed, name, "va", "vb")
        assert_one_line(
            proc, 1, f"interface vb in netns {bed.ns} already runs XDP program id {foreign_id}",
            f"ip -n {bed.ns} link set dev vb xdp off",
        )
        assert_no_trace(name)
        bed.assert_clean("va")
        assert [x["id"] for x in bed.xdp("vb")] == [foreign_id]  # not ours: untouched
        assert bed.tc("vb") == []
    finally:
        foreign.cleanup()


def test_missing_namespace_is_not_created(kernel_ready):
    missing = unique()
    name = unique()
    proc = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "eth1",
               "--netns", missing)
    assert_one_line(proc, 1, f"network namespace {missing!r} not found")
    assert not Path("/run/netns", missing).exists()
    assert_no_trace(name)


def test_malformed_and_unknown_config(bed, tmp_path):
    name = bed.instance()
    bad = tmp_path / "bad.toml"
    bad.write_text(f'name = "{name}"\ninterfaces = ["va"\n')
    assert_one_line(sfc("up", "--config", str(bad)), 2, "is not valid TOML")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(f'name = "{name}"\nencap = "mpls"\nkey = "tcpip"\ninterface = "va"\n')
    assert_one_line(sfc("up", "--config", str(unknown)), 2, "unknown key 'interface'")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(f'name = "{name}"\nencap = "mpls"\nkey = "tcpip"\ninterfaces = "va"\n')
    assert_one_line(sfc("up", "--config", str(wrong)), 2, "interfaces must be a list")
    assert_one_line(sfc("up", "--config", str(tmp_path / "none.toml")), 2, "not found")
    assert_untouched(bed, name)


def test_bad_flags_and_parameters(bed):
    name = bed.instance()
    assert_one_line(up(bed, name), 2, "at least one --iface is required")
    assert_one_line(up(bed, "../x", "va"), 2, "instance name '../x'")
    assert_one_line(up(bed, name, "va", "va"), 2, "interface va given twice")
    assert_one_line(up(bed, name, "va", extra=("--param", "max_labels=99")), 2, "max_labels")
    assert_untouched(bed, name)


def test_unknown_names(kernel_ready):
    name = unique()
    proc = sfc("down", name)
    assert proc.returncode == 0 and proc.stdout.strip() == f"{name}: not running"
    assert proc.stderr == ""
    assert_one_line(sfc("stats", name), 1, f"{name}: no such instance")
    assert_one_line(sfc("set", name, "strict=true"), 1, f"{name}: no such instance")
    assert_one_line(sfc("set", name, "speed=3"), 2, "expected SETTING=VALUE")


def test_no_root(bed):
    name = bed.instance()
    proc = up(bed, name, "va", prefix=["setpriv", "--reuid=65534", "--regid=65534",
                                       "--clear-groups"])
    assert_one_line(proc, 2, "needs root")
    assert_untouched(bed, name)


def test_bcc_missing(bed, tmp_path):
    fake = tmp_path / "bcc"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no bcc in this test')\n")
    name = bed.instance()
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = up(bed, name, "va", env_extra={"PYTHONPATH": path})
    assert_one_line(proc, 2, "bcc is not importable")
    assert_untouched(bed, name)
    assert last_line(proc).endswith("(it installs Debian's python3-bpfcc and a venv that sees it)")


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_config_files_that_cannot_be_read(bed, tmp_path):
    name = bed.instance()
    latin = tmp_path / "latin1.toml"
    latin.write_bytes(f'name = "{name}"\nencap = "caf\xe9"\n'.encode("latin-1"))
    assert_one_line(sfc("up", "--config", str(latin)), 2, str(latin), "not UTF-8")
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert_one_line(sfc("up", "--config", str(deep)), 2, str(deep), "nested too deeply")
    assert_untouched(bed, name)


@pytest.mark.parametrize(
    "args", [["list"], ["stats"], ["stats", "--prometheus"], ["set", "x", "strict=true"],
             ["down", "x"], ["size", "--observe", "x"]])
def test_operating_commands_need_root(kernel_ready, args):
    assert_one_line(sfc(*args, prefix=NOBODY), 2, "needs root")


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400", "1e12"])
def test_watch_needs_a_finite_interval(kernel_ready, value):
    proc = sfc("stats", "--watch", value, timeout=20)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "--watch" in last_line(proc)


def test_build_output_that_cannot_be_a_directory(tmp_path):
    existing = tmp_path / "file.c"
    existing.write_text("x")
    for target in (existing, Path("/proc/sfcframe-out"), existing / "sub"):
        proc = sfc("build", "--encap", "mpls", "--key", "tcpip", "-o", str(target))
        assert_one_line(proc, 2, str(target))
    assert existing.read_text() == "x"
