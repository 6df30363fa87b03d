"""XDP and TC clsact attachment through pyroute2 (rtnetlink).

XDP is attached with ``XDP_FLAGS_UPDATE_IF_NOEXIST``: an interface that
already runs an XDP program is refused, never taken over. It is detached with
``XDP_FLAGS_REPLACE`` and the expected program, so ``down`` removes our
program and nothing else, in the mode it was attached in (a generic program
is only removed with the generic flag).

TC filters use fixed coordinates (``PRIO``/``HANDLE`` on the clsact ingress or
egress parent) so they are deleted exactly; a clsact qdisc is only removed if
``up`` created it and no other filter is left on it.
"""

from __future__ import annotations

import errno

from sfcframe.runtime.errors import AttachError
from sfcframe.runtime.netns import where

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_REPLACE = 1 << 4
MODE_FLAGS = {"native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}
#: IFLA_XDP_ATTACHED as pyroute2 names it -> our mode names
ATTACHED = {"xdp": "native", "xdpgeneric": "generic", "xdpoffload": "offload", "xdpmulti": "multi"}

TC_PARENT = {"egress": 0xFFFFFFF3, "ingress": 0xFFFFFFF2}
CLSACT_HANDLE = 0xFFFF0000
#: filter priority and handle of every sfcframe filter ("5fc" for SFC)
PRIO = 0x5FC0
HANDLE = 0x5FC
#: ProgramSpec.hook -> TC direction
HOOK_DIRECTION = {"tc-egress": "egress", "tc-ingress": "ingress"}


def _code(exc: Exception) -> int:
    return getattr(exc, "code", 0) or 0


def link_index(ipr, ifname: str, netns: str | None) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise AttachError(f"interface {ifname} not found{where(netns)}")
    return found[0]


def xdp_state(ipr, index: int) -> tuple[str | None, int | None]:
    """(mode, program id) of the XDP program on an interface, (None, None) if none."""
    link = ipr.link("get", index=index)[0]
    xdp = link.get_attr("IFLA_XDP")
    if not xdp:
        return None, None
    attached = xdp.get_attr("IFLA_XDP_ATTACHED")
    if not attached:
        return None, None
    return ATTACHED.get(attached, str(attached)), xdp.get_attr("IFLA_XDP_PROG_ID")


def _set_xdp(ipr, index: int, fd: int, flags: int, expected_fd: int | None = None) -> None:
    attrs = [("IFLA_XDP_FD", fd), ("IFLA_XDP_FLAGS", flags)]
    if expected_fd is not None:
        attrs.append(("IFLA_XDP_EXPECTED_FD", expected_fd))
    ipr.link("set", index=index, xdp={"attrs": attrs})


def held_message(ifname: str, netns: str | None, mode: str | None, prog_id, owner: str = "") -> str:
    off = "xdpgeneric off" if mode == "generic" else "xdp off"
    who = f" (sfcframe instance {owner})" if owner else ""
    return (
        f"interface {ifname}{where(netns)} already runs XDP program id {prog_id} "
        f"({mode or 'unknown'} mode){who}; sfcframe does not replace it: detach it "
        f"(ip link set dev {ifname} {off}) or proxy another interface"
    )


def attach_xdp(ipr, index: int, ifname: str, netns: str | None, fd: int, mode: str) -> str:
    """Attach in ``mode`` (native, generic, auto = native else generic); returns the mode used."""
    tries = ["native", "generic"] if mode == "auto" else [mode]
    last: Exception | None = None
    for attempt in tries:
        try:
            _set_xdp(ipr, index, fd, XDP_FLAGS_UPDATE_IF_NOEXIST | MODE_FLAGS[attempt])
            return attempt
        except Exception as exc:  # noqa: BLE001 - NetlinkError, classified below
            last = exc
            code = _code(exc)
            if code in (errno.EBUSY, errno.EEXIST):
                held_mode, prog_id = xdp_state(ipr, index)
                raise AttachError(held_message(ifname, netns, held_mode, prog_id)) from None
            if code == errno.EOPNOTSUPP and attempt == "native":
                continue
            break
    code = _code(last) if last else 0
    if code == errno.EOPNOTSUPP and mode == "native":
        raise AttachError(
            f"interface {ifname}{where(netns)}: its driver has no native XDP; "
            "use --xdp-mode generic or auto"
        )
    raise AttachError(f"interface {ifname}{where(netns)}: attaching XDP failed: {last}")


def detach_xdp(ipr, index: int, mode: str, expected_fd: int | None) -> None:
    """Detach our program; raises AttachError if another program replaced it."""
    flags = MODE_FLAGS[mode]
    if expected_fd is not None:
        flags |= XDP_FLAGS_REPLACE
    try:
        _set_xdp(ipr, index, -1, flags, expected_fd)
    except Exception as exc:  # noqa: BLE001
        raise AttachError(f"detaching XDP failed: {exc}") from None


def detach_xdp_if_ours(ipr, index: int, prog_id: int | None, expected_fd: int | None) -> str | None:
    """Detach program ``prog_id`` in whatever mode it runs; its mode, or None if not there."""
    mode, current = xdp_state(ipr, index)
    if prog_id is None or current != prog_id or mode not in MODE_FLAGS:
        return None
    detach_xdp(ipr, index, mode, expected_fd)
    return mode


# ---- TC -------------------------------------------------------------------
def has_clsact(ipr, index: int) -> bool:
    return any(
        q.get_attr("TCA_KIND") == "clsact" for q in ipr.get_qdiscs(index=index)
    )


def ensure_clsact(ipr, index: int) -> bool:
    """Add a clsact qdisc if there is none; True if we added it."""
    if has_clsact(ipr, index):
        return False
    try:
        ipr.tc("add", "clsact", index=index)
    except Exception as exc:  # noqa: BLE001
        if _code(exc) == errno.EEXIST:
            return False
        raise AttachError(f"adding a clsact qdisc failed: {exc}") from None
    return True


def add_filter(ipr, index: int, direction: str, fd: int, function: str) -> None:
    try:
        ipr.tc(
            "add-filter",
            "bpf",
            index=index,
            fd=fd,
            name=function,
            parent=TC_PARENT[direction],
            prio=PRIO,
            handle=HANDLE,
            classid=1,
            direct_action=True,
        )
    except Exception as exc:  # noqa: BLE001
        if _code(exc) == errno.EEXIST:
            raise AttachError(
                f"a TC {direction} filter with prio {PRIO} handle {HANDLE:#x} exists already"
            ) from None
        raise AttachError(f"adding the TC {direction} filter failed: {exc}") from None


def _filters(ipr, index: int, parent: int) -> list:
    try:
        return list(ipr.get_filters(index=index, parent=parent))
    except Exception:  # noqa: BLE001 - no clsact: no filters
        return []


def find_filter(ipr, index: int, parent: int, prio: int, handle: int, function: str):
    """Our filter at these coordinates (a bpf filter named ``function``), or None."""
    for msg in _filters(ipr, index, parent):
        if msg["handle"] != handle or (msg["info"] >> 16) != prio:
            continue
        if msg.get_attr("TCA_KIND") != "bpf":
            continue
        options = msg.get_attr("TCA_OPTIONS")
        if options is not None and options.get_attr("TCA_BPF_NAME") not in (None, function):
            continue
        return msg
    return None


def del_filter(ipr, index: int, parent: int, prio: int, handle: int) -> None:
    try:
        ipr.tc("del-filter", "bpf", index=index, parent=parent, prio=prio, handle=handle)
    except Exception as exc:  # noqa: BLE001
        if _code(exc) in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            return
        raise AttachError(f"deleting the TC filter failed: {exc}") from None


def filters_left(ipr, index: int) -> int:
    """Filters of anyone on the clsact hooks (dump entries with a handle: one per filter)."""
    count = 0
    for parent in TC_PARENT.values():
        count += sum(1 for m in _filters(ipr, index, parent) if m["handle"])
    return count


def del_clsact(ipr, index: int) -> None:
    try:
        ipr.tc("del", "clsact", index=index)
    except Exception as exc:  # noqa: BLE001
        if _code(exc) in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            return
        raise AttachError(f"deleting the clsact qdisc failed: {exc}") from None
