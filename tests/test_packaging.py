"""Packaging: what the sfcframe wheel holds, and that it works once installed.

(a) build the wheel and check its layout: the built-in encapsulations and the
    core templates live inside the ``sfcframe`` package, where the code looks
    for them, and nothing else lands at the top level of site-packages;
(b) install it into a fresh venv, as a user would, and run the CLI from a
    directory outside the checkout (so nothing can come from the source tree);
(c) install the third-party example plugin plugins/sfcframe-exptag (a copy,
    not editable) into that venv and find it through its entry point.

The wheel is built from a copy of the checkout's files (tracked and untracked,
not ignored: what ``git ls-files`` shows), never in place: an in-place build
writes build/ into the checkout, and a stale build/lib can leak deleted files
into later wheels. pip reaches the package index through its usual cache, so
a second run downloads nothing.

The venv uses --system-site-packages because bcc comes only from Debian's
python3-bpfcc; every other dependency must then satisfy the lower bounds in
pyproject.toml, which ``pip install WHEEL`` ensures by installing a newer
release into the venv when the system's is too old.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "sfcframe-exptag"
SYSTEM_PYTHON = Path("/usr/bin/python3")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DIST_INFO = f"sfcframe-{PROJECT['version']}.dist-info"
#: never copied, at any depth: build outputs, caches, environments
ARTIFACTS = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
             ".hypothesis")
OUTPUTS = ("sfc_proxy.h", "sfc_ingress.c", "sfc_egress.c", "sfc_proxy.c")


# ---- helpers ----------------------------------------------------------------
def _env() -> dict[str, str]:
    """The environment minus whatever would let the checkout or our venv leak in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def run(cmd, cwd: Path, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; on failure, fail the test with its exit code, stdout and stderr."""
    argv = [str(c) for c in cmd]
    try:
        proc = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {timeout} s: {' '.join(argv)}\n"
                    f"--- stderr ---\n{_tail(exc.stderr or '')}", pytrace=False)
    if check and proc.returncode != 0:
        pytest.fail(
            f"exit {proc.returncode}: {' '.join(argv)}\n(cwd {cwd})\n"
            f"--- stdout ---\n{_tail(proc.stdout)}\n--- stderr ---\n{_tail(proc.stderr)}",
            pytrace=False,
        )
    return proc


def copy_sources(src: Path, dest: Path) -> Path:
    """Copy what a clean checkout of ``src`` holds (plus untracked, unignored files)."""
    listed = subprocess.run(
        ["git", "-C", str(src), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True,
    )
    if listed.returncode != 0:  # not a git checkout (e.g. an sdist): copy minus artifacts
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*ARTIFACTS))
        return dest
    for name in filter(None, listed.stdout.split("\0")):
        path = src / name
        if path.is_file():  # tracked but deleted in the work tree: skip
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / name)
    return dest


# ---- fixtures ---------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("packaging")
    assert not path.resolve().is_relative_to(ROOT), f"{path} must be outside the checkout"
    return path


@pytest.fixture(scope="module")
def source(workdir) -> Path:
    return copy_sources(ROOT, workdir / "src")


@pytest.fixture(scope="module")
def wheel(workdir, source) -> Path:
    out = workdir / "wheelhouse"
    try:
        import build  # noqa: F401
    except ImportError:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out, source]
    else:
        cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", out, source]
    run(cmd, cwd=workdir)
    wheels = sorted(out.glob("sfcframe-*.whl"))
    assert len(wheels) == 1, f"expected one sfcframe wheel in {out}, found {wheels}"
    return wheels[0]


@pytest.fixture(scope="module")
def venv(workdir, wheel) -> Path:
    if not SYSTEM_PYTHON.exists():
        pytest.fail(f"{SYSTEM_PYTHON} not found: the venv needs Debian's python for bcc",
                    pytrace=False)
    path = workdir / "venv"
    run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", path], cwd=workdir)
    run([path / "bin" / "python", "-m", "pip", "install", wheel], cwd=workdir)
    return path


@pytest.fixture(scope="module")
def elsewhere(workdir) -> Path:
    """A working directory outside the checkout."""
    path = workdir / "elsewhere"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def exptag_installed(workdir, venv) -> Path:
    """plugins/sfcframe-exptag installed into the venv from a copy, not editable."""
    src = copy_sources(PLUGIN, workdir / "sfcframe-exptag")
    run([venv / "bin" / "python", "-m", "pip", "install", src], cwd=workdir)
    return venv


# ---- (a) the wheel's layout --------------------------------------------------
def test_wheel_layout(wheel, source):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(f"{DIST_INFO}/entry_points.txt").decode()
    listing = "\n  ".join(sorted(names))

    top = {name.split("/", 1)[0] for name in names}
    assert top == {"sfcframe", DIST_INFO}, (
        f"unexpected top-level entries {sorted(top - {'sfcframe', DIST_INFO})} "
        f"(e.g. encaps/ or bpf_templates/ must not be installed at the top of "
        f"site-packages); wheel holds:\n  {listing}"
    )
    assert not any(n.startswith(("encaps/", "bpf_templates/")) for n in names), listing

    required = {
        "sfcframe/encaps/__init__.py",
        "sfcframe/encaps/mpls/__init__.py",
        "sfcframe/encaps/mpls/mpls.c.j2",
        "sfcframe/encaps/mpls/scapy_layers.py",
        "sfcframe/bpf_templates/__init__.py",
        "sfcframe/keys/tcpip.c.j2",
        "sfcframe/testkit/harness.py",
    }
    # every template of the source tree, at the place the code loads it from
    required |= {f"sfcframe/bpf_templates/{p.name}" for p in (source / "bpf_templates").glob("*.j2")}
    required |= {f"sfcframe/keys/{p.name}" for p in (source / "sfcframe" / "keys").glob("*.c.j2")}
    required |= {
        f"sfcframe/encaps/{p.relative_to(source / 'encaps').as_posix()}"
        for p in (source / "encaps").glob("*/*.c.j2")
    }
    assert len([n for n in required if n.startswith("sfcframe/bpf_templates/")]) >= 5
    missing = sorted(required - names)
    assert not missing, f"missing from the wheel: {missing}; wheel holds:\n  {listing}"

    for line in ("mpls = sfcframe.encaps.mpls:MplsEncap", "tcpip = sfcframe.keys.tcpip:TcpIpKey",
                 "sfcframe = sfcframe.cli:main"):
        assert line in entry_points, f"{line!r} not in entry_points.txt:\n{entry_points}"


# ---- (b) installed into a fresh venv ----------------------------------------
def _venv_python(venv: Path, code: str, *args: str, cwd: Path) -> dict:
    return json.loads(run([venv / "bin" / "python", "-c", code, *args], cwd=cwd).stdout)


def test_venv_has_the_wheel_and_dependencies_at_their_lower_bounds(venv, elsewhere):
    from packaging.requirements import Requirement
    from packaging.version import Version

    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    seen = _venv_python(
        venv,
        "import importlib.metadata as m, json, sys, sfcframe, pyroute2, bcc\n"
        "print(json.dumps({'versions': {n: m.version(n) for n in sys.argv[1:]},\n"
        "  'sfcframe': sfcframe.__file__, 'pyroute2': pyroute2.__version__}))",
        *[r.name for r in requirements],
        cwd=elsewhere,
    )
    assert Path(seen["sfcframe"]).resolve().is_relative_to(venv.resolve()), (
        f"sfcframe imported from {seen['sfcframe']}, not from the venv {venv}"
    )
    too_old = {
        r.name: seen["versions"][r.name]
        for r in requirements
        if not r.specifier.contains(seen["versions"][r.name], prereleases=True)
    }
    assert not too_old, f"installed versions outside pyproject's bounds: {too_old} ({requirements})"
    assert Version(seen["pyroute2"]) >= Version("0.9"), seen


def test_build_outside_the_checkout(venv, elsewhere):
    out = elsewhere / "out"
    shutil.rmtree(out, ignore_errors=True)
    proc = run([venv / "bin" / "sfcframe", "build", "--encap", "mpls", "--key", "tcpip", "-o", out],
               cwd=elsewhere)
    missing = [name for name in OUTPUTS if not (out / name).is_file()]
    assert not missing, f"not written: {missing}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    for name in OUTPUTS:
        head = "\n".join((out / name).read_text().splitlines()[:5])
        assert "SPDX-License-Identifier: GPL-2.0" in head, f"{name} header:\n{head}"
        assert "DO NOT EDIT" in head, f"{name} header:\n{head}"


@pytest.mark.kernel
def test_check_outside_the_checkout(venv, elsewhere):
    proc = run([venv / "bin" / "sfcframe", "build", "--encap", "mpls", "--key", "tcpip", "--check"],
               cwd=elsewhere)
    assert "OK" in proc.stdout, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    for program in ("sfc_ingress", "sfc_egress"):
        assert f"verifier OK: {program}" in proc.stdout, proc.stdout


# ---- (c) a third-party plugin in the same venv --------------------------------
def test_third_party_plugin_is_discovered(exptag_installed, elsewhere):
    venv = exptag_installed
    proc = run([venv / "bin" / "sfcframe", "plugins", "--json"], cwd=elsewhere)
    report = json.loads(proc.stdout)
    encaps = {e["name"]: e for e in report["encaps"]}
    assert "exptag" in encaps, f"encaps found: {sorted(encaps)}\nstderr:\n{proc.stderr}"
    assert encaps["exptag"]["distribution"].split()[0] == "sfcframe-exptag", encaps["exptag"]
    assert encaps["mpls"]["distribution"].split()[0] == "sfcframe", encaps["mpls"]
    assert report["failures"] == [], report["failures"]
    where = _venv_python(venv, "import json, sfcframe_exptag as m; print(json.dumps(m.__file__))",
                         cwd=elsewhere)
    assert Path(where).resolve().is_relative_to(venv.resolve()), (
        f"sfcframe_exptag imported from {where}: expected a copy inside the venv"
    )


@pytest.mark.kernel
def test_third_party_plugin_builds_and_verifies(exptag_installed, elsewhere):
    proc = run([exptag_installed / "bin" / "sfcframe", "build", "--encap", "exptag", "--key",
                "tcpip", "--param", "bump=1", "--check"], cwd=elsewhere)
    assert "verifier OK: sfc_egress" in proc.stdout and "OK" in proc.stdout, proc.stdout
