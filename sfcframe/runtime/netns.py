"""Named network namespaces (``ip netns``): netlink sockets and tools inside them.

Only the network namespace is entered, never the mount namespace: ``ip netns
exec`` remounts /sys and hides the real bpffs (FIELD-NOTES), and nothing here
needs it. pyroute2's ``IPRoute(netns=...)`` creates a missing namespace, so
existence is checked first and ``flags=0`` forbids creation.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

from sfcframe.runtime.errors import AttachError

NETNS_DIR = Path("/run/netns")


def check(netns: str | None) -> None:
    if netns is None:
        return
    if "/" in netns or netns in ("", ".", ".."):
        raise AttachError(f"network namespace {netns!r}: not a namespace name")
    if not (NETNS_DIR / netns).exists():
        raise AttachError(
            f"network namespace {netns!r} not found (no {NETNS_DIR / netns}; see `ip netns list`)"
        )


@contextlib.contextmanager
def iproute(netns: str | None) -> Iterator[object]:
    """An rtnetlink socket in ``netns`` (None: this process's namespace)."""
    from pyroute2 import IPRoute

    check(netns)
    ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def tool(netns: str | None, argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    """Run a tool (e.g. ethtool) in ``netns``'s network namespace only."""
    if shutil.which(argv[0]) is None:
        raise AttachError(
            f"{argv[0]} not found on PATH (install it, e.g. apt-get install {argv[0]})"
        )
    if netns:
        check(netns)
        argv = ["nsenter", f"--net={NETNS_DIR / netns}", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def where(netns: str | None) -> str:
    """' in netns X' or '' for messages."""
    return f" in netns {netns}" if netns else ""
