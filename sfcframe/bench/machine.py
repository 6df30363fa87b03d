"""What a result was measured on: CPU, kernel, distribution, versions, BPF knobs.

Everything here is read from /proc, /sys and package metadata; a field that
cannot be read is None rather than an error, so a result can always be written.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from sfcframe import __version__


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _int(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cpu_model() -> str | None:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            return value.strip()
    return platform.processor() or None


def hypervisor() -> str | None:
    """'KVM', 'xen', ... when the CPU reports running under one, else None."""
    text = _read("/proc/cpuinfo") or ""
    if " hypervisor" not in text:
        return None
    vendor = _read("/sys/hypervisor/type")
    if vendor:
        return vendor
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "yes"
    for line in out.splitlines():
        if line.startswith("Hypervisor vendor:"):
            return line.partition(":")[2].strip()
    return "yes"


def distro() -> str | None:
    text = _read("/etc/os-release") or ""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        fields[name] = value.strip().strip('"')
    pretty = fields.get("PRETTY_NAME")
    debian = _read("/etc/debian_version")
    if pretty and debian:
        return f"{pretty} ({debian})"
    return pretty or debian


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def bcc_version() -> str | None:
    try:
        from sfcframe.loader import bcc_module

        return getattr(bcc_module(), "__version__", None)
    except Exception:  # noqa: BLE001 - recorded as unknown
        return None


def git_revision() -> dict[str, Any] | None:
    """Commit and dirtiness of the checkout sfcframe runs from, if it is one."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def describe() -> dict[str, Any]:
    """The ``machine`` object of every result file."""
    uname = platform.uname()
    online = _read("/sys/devices/system/cpu/online")
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cpus_online": online,
        "hypervisor": hypervisor(),
        "kernel": uname.release,
        "kernel_version": uname.version,
        "arch": uname.machine,
        "distro": distro(),
        "clocksource": _read(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource"
        ),
        "bpf": {
            "jit_enable": _int("/proc/sys/net/core/bpf_jit_enable"),
            "jit_harden": _int("/proc/sys/net/core/bpf_jit_harden"),
            "stats_enabled": _int("/proc/sys/kernel/bpf_stats_enabled"),
        },
        "loadavg": _read("/proc/loadavg"),
        "versions": {
            "sfcframe": __version__,
            "bcc": bcc_version(),
            "python": sys.version.split()[0],
            "scapy": _version("scapy"),
            "matplotlib": _version("matplotlib"),
        },
        "git": git_revision(),
    }
