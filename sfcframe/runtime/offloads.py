"""Receive offloads that break per-packet restoration, switched off and back.

The ingress program strips every frame before GRO runs (native XDP); if the
interface then merges several stripped frames into one skb (GRO, GRO fraglist,
LRO, hardware GRO), the VNF and the egress program see one packet where
several were cached: one entry is restored onto the merged packet, the others
go stale, and on this kernel (no MPLS GSO) the merged packet with its restored
header is dropped when it is segmented (measured: every GSO skb that got a
label pushed at TC egress was dropped, with TSO/GSO on or off on the egress
device). So ``up`` switches these features off on every proxied interface and
``down`` switches back exactly the ones it changed.

TSO/GSO on the proxied interfaces are only looked at and recorded, not changed:
segmentation happens after TC egress (``validate_xmit_skb``) and TCP builds
GSO skbs whatever the device advertises, so switching them off changes nothing
the proxy sees (measured: 65 KB skbs at TC egress with TSO and GSO off) and
costs throughput (about 4x in a veth test).

Features are read and set with pyroute2's ethtool (``Ethtool.get_features`` /
``set_features``: the SIOCETHTOOL ioctl, on a socket made in the instance's
network namespace) and named as ``ethtool -k`` shows them, in the state record
and in every message.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from sfcframe.runtime import netns as ns
from sfcframe.runtime.errors import AttachError, OffloadError

#: features that merge received frames: ethtool -k name -> ethtool -K name
MERGING = {
    "generic-receive-offload": "gro",
    "rx-gro-list": "rx-gro-list",
    "large-receive-offload": "lro",
    "rx-gro-hw": "rx-gro-hw",
}
#: features looked at and recorded, never changed (see the module docstring)
OBSERVED = {
    "tcp-segmentation-offload": "tso",
    "generic-segmentation-offload": "gso",
}
#: the kernel's names (its ETH_SS_FEATURES strings) of the merging features
KERNEL_NAMES = {
    "generic-receive-offload": "rx-gro",
    "rx-gro-list": "rx-gro-list",
    "large-receive-offload": "rx-lro",
    "rx-gro-hw": "rx-gro-hw",
}


@contextlib.contextmanager
def _ethtool(netns: str | None) -> Iterator[object]:
    """pyroute2's Ethtool with its sockets made in ``netns`` (None: this one)."""
    from pyroute2.ethtool import Ethtool

    if netns:
        with ns.entered(netns):
            tool = Ethtool()
    else:
        tool = Ethtool()
    try:
        yield tool
    finally:
        tool.close()


def read(netns: str | None, ifname: str) -> dict[str, tuple[str, bool]]:
    """{``ethtool -k`` name: (on|off, fixed)} of the merging and the observed
    features the interface has; fixed: the driver does not allow changing it.
    TSO and GSO are the kernel's legacy offload flags (TSO covers every
    tx-tcp*-segmentation feature), as ``ethtool -k`` shows them."""
    from pyroute2.ethtool.ioctl import NoSuchDevice, NotSupportedError

    try:
        with _ethtool(netns) as tool:
            found = tool.get_features(ifname)
    except (OSError, NoSuchDevice, NotSupportedError) as exc:
        reason = ("no such device" if isinstance(exc, NoSuchDevice) else
                  "not supported by its driver" if isinstance(exc, NotSupportedError) else
                  exc.strerror or str(exc))
        raise AttachError(f"offload features of {ifname}{ns.where(netns)}: {reason}") from None
    features: dict[str, tuple[str, bool]] = {}
    for name, kernel_name in KERNEL_NAMES.items():
        feature = found.features.get(kernel_name)
        if feature is not None:
            features[name] = ("on" if feature.enable else "off", not feature.available)
    for name in OBSERVED:
        if name in found.offload_flags:
            features[name] = ("on" if found.offload_flags[name] else "off", False)
    return features


def _set(netns: str | None, ifname: str, values: dict[str, str]) -> None:
    """Set merging features ({name: on|off}); the caller checks the result by
    reading them again (the kernel may keep one as it was), so a refusal here
    is not an error of its own."""
    from pyroute2.ethtool.ioctl import EthtoolError

    with contextlib.suppress(OSError, EthtoolError), _ethtool(netns) as tool:
        found = tool.get_features(ifname)
        for name, value in values.items():
            found.features[KERNEL_NAMES[name]].enable = value == "on"
        tool.set_features(ifname, found)


def seen(features: dict[str, tuple[str, bool]]) -> dict[str, str]:
    return {
        name: features[name][0] for name in (*MERGING, *OBSERVED) if name in features
    }


def plan(netns: str | None, ifname: str, fix: bool = True) -> tuple[dict, dict]:
    """(all values seen, {feature to switch off: its value now}) for one interface.

    Refuses a merging feature that is on and fixed, and with ``fix=False`` any
    merging feature that is on, saying what to do instead.
    """
    features = read(netns, ifname)
    before = seen(features)
    on = [name for name in MERGING if features.get(name, ("off", False))[0] == "on"]
    fixed = [name for name in on if features[name][1]]
    if fixed:
        raise OffloadError(
            f"interface {ifname}{ns.where(netns)}: {', '.join(fixed)} is on and fixed "
            "(the driver does not allow switching it off); per-packet restoration would "
            "be wrong there: proxy another interface"
        )
    if on and not fix:
        short = " ".join(f"{MERGING[n]} off" for n in on)
        raise OffloadError(
            f"interface {ifname}{ns.where(netns)}: {', '.join(on)} merges stripped packets; "
            f"run `{ns.hint(netns, 'ethtool', '-K', ifname, short)}` or drop --keep-offloads"
        )
    return before, {name: before[name] for name in on}


def apply(netns: str | None, ifname: str, change: dict[str, str]) -> None:
    """Switch off what :func:`plan` found; the caller undoes with :func:`restore`."""
    if not change:
        return
    _set(netns, ifname, {name: "off" for name in change})
    after = read(netns, ifname)
    still = [name for name in change if after.get(name, ("on",))[0] != "off"]
    if still:
        short = " ".join(f"{MERGING[n]} off" for n in still)
        raise OffloadError(
            f"interface {ifname}{ns.where(netns)}: could not switch off {', '.join(still)} "
            f"({ns.hint(netns, 'ethtool', '-K', ifname, short)})"
        )


def restore(netns: str | None, ifname: str, changed: dict[str, str]) -> list[str]:
    """Put back what :func:`apply` changed; returns features that did not come back."""
    if not changed:
        return []
    _set(netns, ifname, changed)
    after = read(netns, ifname)
    return [name for name, value in changed.items() if after.get(name, ("?",))[0] != value]
