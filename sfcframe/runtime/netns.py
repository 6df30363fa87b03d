"""Named network namespaces (``ip netns``): netlink and ioctl sockets inside them.

Only the network namespace is entered, never the mount namespace: ``ip netns
exec`` remounts /sys and hides the real bpffs (FIELD-NOTES), and nothing here
needs it. pyroute2's ``IPRoute(netns=...)`` creates a missing namespace, so
existence is checked first and ``flags=0`` forbids creation.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from sfcframe.runtime.errors import AttachError

NETNS_DIR = Path("/run/netns")


def valid_name(netns: str) -> bool:
    """A name ``ip netns`` could have made (a file name in /run/netns)."""
    return (isinstance(netns, str) and netns not in ("", ".", "..") and len(netns) < 256
            and not any(c in netns for c in "/\0\n"))


def check(netns: str | None) -> None:
    if netns is None:
        return
    if not valid_name(netns):
        raise AttachError(f"network namespace {netns!r}: not a namespace name")
    if not (NETNS_DIR / netns).exists():
        raise AttachError(
            f"network namespace {netns!r} not found (no {NETNS_DIR / netns}; see `ip netns list`)"
        )


def identity(netns: str | None) -> int:
    """The namespace's inode: a namespace deleted and created again under the
    same name has another one (None: this thread's namespace)."""
    check(netns)
    path = NETNS_DIR / netns if netns else Path("/proc/thread-self/ns/net")
    return os.stat(path).st_ino


def named() -> list[str]:
    """Every named namespace (``ip netns list``)."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if valid_name(n))
    except FileNotFoundError:
        return []


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


@contextlib.contextmanager
def entered(netns: str) -> Iterator[None]:
    """Run the body with this thread in ``netns``'s network namespace, and back.

    pyroute2's ``setns`` switches (``flags=0``: a missing namespace is an error,
    never created). The namespace to come back to is this thread's own, saved
    here: pyroute2's ``pushns`` saves the process's (``/proc/self``), which is
    another one when a thread other than the main one calls. Sockets made in
    the body (netlink, ioctl) stay bound to ``netns`` after it ends; no process
    is forked.
    """
    from pyroute2.netns import setns

    check(netns)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(str(NETNS_DIR / netns), flags=0)
        try:
            yield
        finally:
            setns(home, flags=0)
    finally:
        os.close(home)


def where(netns: str | None) -> str:
    """' in netns X' or '' for messages."""
    return f" in netns {netns}" if netns else ""


def hint(netns: str | None, tool: str, *args: str) -> str:
    """The command an operator runs for ``tool args`` where the interface lives:
    ``ip -n NS link ...`` and ``tc -n NS filter ...`` (both take the namespace),
    ``ip netns exec NS ethtool ...`` (ethtool does not); as is in this namespace."""
    line = " ".join((tool, *args))
    if not netns:
        return line
    if tool in ("ip", "tc"):
        return " ".join((tool, "-n", netns, *args))
    return f"ip netns exec {netns} {line}"
