"""The command line as a user runs it: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.badplugins import write_bad_plugins

SFCFRAME = [sys.executable, "-m", "sfcframe"]


def run(*args: str, env_extra: dict | None = None, cwd: Path | None = None):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [*SFCFRAME, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def bad_plugins(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("badplugins")
    write_bad_plugins(root)
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path}


def assert_one_line_error(proc, *needles: str, code: int = 2) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sfcframe: "), proc.stderr
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"


def test_help_explains_commands():
    proc = run("--help")
    assert proc.returncode == 0
    for word in ("plugins", "build", "examples"):
        assert word in proc.stdout
    build = run("build", "--help")
    assert build.returncode == 0 and "--check" in build.stdout and "--param" in build.stdout


def test_plugins_lists_builtins_with_parameters():
    proc = run("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    encaps = {p["name"]: p for p in report["encaps"]}
    keys = {p["name"]: p for p in report["keys"]}
    assert {"mpls", "nsh"} <= set(encaps) and {"tcpip", "metadata"} <= set(keys)
    max_labels = {p["name"]: p for p in encaps["mpls"]["params"]}["max_labels"]
    assert max_labels["default"] == 10 and max_labels["range"] == "1..32"
    assert encaps["mpls"]["distribution"].startswith("sfcframe ")
    text = run("plugins")
    assert text.returncode == 0 and "max_labels" in text.stdout and "core parameters" in text.stdout


def test_build_to_stdout_is_marked_and_deterministic():
    first = run("build", "--encap", "mpls", "--key", "tcpip")
    second = run("build", "--encap", "mpls", "--key", "tcpip")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    out = first.stdout
    assert "SPDX-License-Identifier: GPL-2.0-only" in out and "DO NOT EDIT" in out
    assert "Spec: encap=mpls(max_labels=10,pop=1) key=tcpip()" in out
    for marker in ("encap mpls: ingress parser", "key tcpip: ingress derivation",
                   "core: ingress program", "core: egress program"):
        assert f"/* ======== {marker} ======== */" in out
    assert out.count("#define SFC_PROXY_H") == 1 and out.count("int sfc_ingress(") == 1


def test_build_to_stdout_is_the_compilation_unit(tmp_path):
    """stdout is the one unit bcc compiles (sfc_proxy.c), not the files concatenated."""
    out = run("build", "--encap", "mpls", "--key", "tcpip").stdout
    assert run("build", "--encap", "mpls", "--key", "tcpip", "-o", str(tmp_path)).returncode == 0
    assert out == (tmp_path / "sfc_proxy.c").read_text()
    assert "---- file:" not in out


@pytest.mark.kernel
def test_build_stdout_compiles_as_is(tmp_path, kernel_ready):
    from sfcframe.loader import bcc_module

    out = run("build", "--encap", "nsh", "--key", "metadata").stdout
    bcc = bcc_module()
    module = bcc.BPF(text=out.encode())
    try:
        for function in ("sfc_ingress", "sfc_egress"):
            assert module.load_func(function.encode(), bcc.BPF.SCHED_CLS if function == "sfc_egress"
                                    else bcc.BPF.XDP).fd >= 0
    finally:
        module.cleanup()


def test_build_writes_files(tmp_path):
    proc = run("build", "--encap", "mpls", "--key", "tcpip", "--param", "max_labels=5",
               "-o", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    names = sorted(Path(p).name for p in summary["files"])
    assert names == ["sfc_egress.c", "sfc_ingress.c", "sfc_proxy.c", "sfc_proxy.h"]
    assert summary["spec"]["encap"]["params"] == {"max_labels": 5, "pop": 1}
    assert "#define MPLS_MAX_LABELS\t5" in (tmp_path / "out" / "sfc_proxy.h").read_text()


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--encap", "vxlan", "--key", "tcpip"], ["unknown encap plugin 'vxlan'", "mpls"]),
        (["--encap", "mpls", "--key", "nope"], ["unknown key plugin 'nope'", "tcpip"]),
        (["--encap", "mpls", "--key", "tcpip", "--param", "max_labels=99"], ["max_labels=99", "1..32"]),
        (["--encap", "mpls", "--key", "tcpip", "--param", "max_labels=ten"], ["expected an integer"]),
        (["--encap", "mpls", "--key", "tcpip", "--param", "colour=red"], ["unknown parameter 'colour'"]),
        (["--encap", "mpls", "--key", "tcpip", "--param", "max_labels=2", "--param", "pop=3"],
         ["pop=3 exceeds max_labels=2"]),
        (["--encap", "mpls", "--key", "tcpip", "--param", "strict=maybe"], ["expected true or false"]),
        (["--encap", "mpls", "--key", "tcpip", "--cache-size", "0"], ["cache_size=0"]),
        (["--encap", "mpls", "--key", "tcpip", "--param", "vlan.x=1"], ["unknown qualifier 'vlan'"]),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needles):
    assert_one_line_error(run("build", *args), *needles)


def test_plugin_that_fails_to_import_names_its_distribution(bad_plugins):
    proc = run("build", "--encap", "broken", "--key", "tcpip", env_extra=bad_plugins)
    assert_one_line_error(proc, "'broken'", "sfcframe-broken", "frobnicate")
    debug = run("--debug", "build", "--encap", "broken", "--key", "tcpip", env_extra=bad_plugins)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_plugins_command_reports_broken_plugins_and_still_lists_the_rest(bad_plugins):
    proc = run("plugins", "--json", env_extra=bad_plugins)
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert "mpls" in {p["name"] for p in report["encaps"]}
    joined = "\n".join(report["failures"])
    assert "sfcframe-broken" in joined and "sfcframe-notaplugin" in joined
    assert "Traceback" not in proc.stderr


def test_plugin_of_another_contract_version_is_refused(bad_plugins):
    proc = run("build", "--encap", "oldcontract", "--key", "tcpip", env_extra=bad_plugins)
    assert_one_line_error(proc, "oldcontract", "sfcframe-oldcontract", "contract 1",
                          "needs contract 2", "CONTRACT.md")


def test_object_that_is_not_a_plugin_is_refused(bad_plugins):
    proc = run("build", "--encap", "mpls", "--key", "notaplugin", env_extra=bad_plugins)
    assert_one_line_error(proc, "notaplugin", "sfcframe-notaplugin", "KeyPlugin")


@pytest.mark.kernel
def test_check_loads_into_the_verifier(kernel_ready):
    proc = run("build", "--encap", "mpls", "--key", "tcpip", "--check", "--json")
    assert proc.returncode == 0, proc.stderr
    check = json.loads(proc.stdout)["check"]
    assert check["result"] == "OK" and check["license"] == "GPL"
    assert set(check["programs"]) == {"sfc_ingress", "sfc_egress"}
    # the LRU map's value: a 40-byte entry and its insert's 4-byte stamp
    assert check["cache"]["key_size"] == 24 and check["cache"]["value_size"] == 44


@pytest.mark.kernel
@pytest.mark.parametrize("params", [["max_labels=1"], ["max_labels=2"], ["max_labels=32", "pop=0"]])
def test_small_and_large_entries_pass_the_verifier(kernel_ready, params):
    """A 4-byte entry once made clang re-read the length past its bound check."""
    args = [a for p in params for a in ("--param", p)]
    proc = run("build", "--encap", "mpls", "--key", "tcpip", *args, "--check")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.kernel
def test_verifier_rejection_shows_the_log_and_exits_1(kernel_ready, bad_plugins):
    proc = run("build", "--encap", "unchecked", "--key", "tcpip", "--check", env_extra=bad_plugins)
    assert_one_line_error(proc, "verifier rejected sfc_ingress", code=1)
    assert "invalid access to packet" in proc.stderr  # the verifier's own words


@pytest.mark.kernel
def test_compile_error_shows_clang_and_exits_1(kernel_ready, bad_plugins):
    proc = run("build", "--encap", "notc", "--key", "tcpip", "--check", env_extra=bad_plugins)
    assert_one_line_error(proc, "could not compile", code=1)
    assert "error:" in proc.stderr


@pytest.mark.parametrize(
    "command",
    ["plugins", "build", "up", "list", "stats", "set", "down", "size", "demo", "bench", "cache",
     "exporter",
     "bench cost", "bench memory", "bench goodput", "bench drop", "bench delay", "bench collisions",
     "bench srv6", "bench report"],
)
def test_every_command_has_working_help(command):
    proc = run(*command.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: sfcframe" in proc.stdout and "Traceback" not in proc.stderr


# ---- one flag vocabulary ------------------------------------------------------
def _options(parser) -> dict[str, set[str]]:
    """{command: its option strings}, from the real parser."""
    from sfcframe.cli import build_parser

    parser = build_parser(["demo"])  # the demo's own parser, not just its name
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: {o for a in p._actions for o in a.option_strings}
            for name, p in sub.choices.items()}


def test_every_core_parameter_is_the_same_flag_on_build_up_and_demo():
    from sfcframe.spec import CORE_PARAMS

    options = _options(None)
    for param in CORE_PARAMS:
        flag = "--" + param.name.replace("_", "-")
        for command in ("build", "up", "demo"):
            assert flag in options[command], (command, flag)
        if param.kind == "bool":
            assert all("--no-" + flag[2:] in options[c] for c in ("build", "up", "demo"))
    for command in ("plugins", "build", "up", "list", "stats", "size", "demo", "cache"):
        assert {"-j", "--json"} <= options[command], command


def test_build_takes_every_core_flag():
    proc = run("build", "--encap", "mpls", "--key", "tcpip", "--mode", "static",
               "--static-header", "100,200", "--no-track-plain", "--strict", "-j")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    core = summary["spec"]["core"]
    assert core["mode"] == "static" and core["strict"] is True
    assert "mode=static" in summary["describe"]
    ring = json.loads(run("build", "--encap", "mpls", "--key", "metadata", "--cache", "lru",
                          "--cache-size", "64", "-j").stdout)
    assert ring["spec"]["core"]["cache"] == "lru" and ring["spec"]["core"]["cache_size"] == 64
    assert_one_line_error(run("build", "--encap", "mpls", "--key", "tcpip", "--cache-size", "64",
                              "--param", "cache_size=128"), "--cache-size", "disagree")
    bad = run("build", "--encap", "mpls", "--key", "tcpip", "--cache-size", "0")
    assert bad.returncode == 2 and "outside 1..16777216" in bad.stderr


def _app_modules_loaded(argv: list[str]) -> list[str]:
    """The sfcframe.demo / sfcframe.bench modules a fresh interpreter holds after
    building the command line's parser for ``argv``."""
    probe = ("import sys\n"
             "from sfcframe.cli import build_parser\n"
             f"build_parser({argv!r})\n"
             "print(' '.join(m for m in sys.modules "
             "if m.startswith(('sfcframe.demo', 'sfcframe.bench'))))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return proc.stdout.split()


def test_the_command_line_loads_no_demo_and_no_benchmark():
    """Building the parser imports neither: each loads when its subcommand is named."""
    assert _app_modules_loaded([]) == []
    assert _app_modules_loaded(["plugins"]) == []
    assert "sfcframe.demo.cli" in _app_modules_loaded(["demo", "--help"])
    assert "sfcframe.bench.cli" in _app_modules_loaded(["--debug", "bench", "cost"])
