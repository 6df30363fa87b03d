"""XDP and TC clsact attachment through pyroute2 (rtnetlink).

XDP is attached with ``XDP_FLAGS_UPDATE_IF_NOEXIST``: an interface that
already runs an XDP program is refused, never taken over. It is detached with
``XDP_FLAGS_REPLACE`` and an fd of the program to remove, after its id was
compared with the instance's: the kernel detaches that program or nothing, in
the mode it runs in (a generic program is only removed with the generic flag).

TC filters sit at fixed coordinates (``PRIO``/``HANDLE`` on the clsact ingress
or egress parent); an interface that has a filter at ``PRIO`` on either parent
is refused by ``up`` (one instance per interface). A filter is only deleted
after the dump showed our program in it (``TCA_BPF_ID``): coordinates alone
prove nothing. A clsact qdisc is only removed if ``up`` created it and no other
filter is left on it.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

from sfcframe.runtime.errors import AttachError
from sfcframe.runtime.netns import hint, where

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


#: IFLA_XDP attributes of the program in each mode when several run (XDP_ATTACHED_MULTI)
MODE_PROG_ID = {"native": "IFLA_XDP_DRV_PROG_ID", "generic": "IFLA_XDP_SKB_PROG_ID",
                "offload": "IFLA_XDP_HW_PROG_ID"}


def xdp_programs(ipr, index: int) -> dict[str, int]:
    """{mode: program id} of every XDP program on an interface (usually one)."""
    link = ipr.link("get", index=index)[0]
    xdp = link.get_attr("IFLA_XDP")
    attached = xdp.get_attr("IFLA_XDP_ATTACHED") if xdp else None
    if not attached:
        return {}
    mode = ATTACHED.get(attached, str(attached))
    if mode != "multi":
        return {mode: xdp.get_attr("IFLA_XDP_PROG_ID")}
    found = {m: xdp.get_attr(attr) for m, attr in MODE_PROG_ID.items()}
    return {m: prog_id for m, prog_id in found.items() if prog_id}


def xdp_state(ipr, index: int) -> tuple[str | None, int | None]:
    """(mode, program id) of the XDP program on an interface, (None, None) if none."""
    programs = xdp_programs(ipr, index)
    return next(iter(programs.items()), (None, None))


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
        f"({hint(netns, 'ip', 'link', 'set', 'dev', ifname, off)}) or proxy another interface"
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


def detach_xdp_if_ours(ipr, index: int, prog_id: int | None, expected_fd: int) -> str | None:
    """Detach program ``prog_id`` (``expected_fd`` is an fd of it) in whatever mode it
    runs; its mode, or None if it is not attached there."""
    for mode, current in xdp_programs(ipr, index).items():
        if prog_id is not None and current == prog_id and mode in MODE_FLAGS:
            detach_xdp(ipr, index, mode, expected_fd)
            return mode
    return None


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


@dataclass(frozen=True)
class TcAttachment:
    """One filter on a clsact hook as the kernel dumps it."""

    direction: str  # "egress" | "ingress"
    parent: int
    prio: int
    handle: int
    kind: str
    name: str | None  # TCA_BPF_NAME
    prog_id: int | None  # TCA_BPF_ID: the program the filter runs (bpf filters)


#: attributes inside TCA_OPTIONS of a bpf filter that pyroute2 0.9 does not decode
TCA_BPF_ID = 11


def _bpf_prog_id(options) -> int | None:
    """TCA_BPF_ID from the raw bytes of a bpf filter's TCA_OPTIONS."""
    raw = bytes(options.data[options.offset + 4 : options.offset + options.length])
    at = 0
    while at + 4 <= len(raw):
        length, kind = struct.unpack_from("=HH", raw, at)
        if length < 4:
            return None
        if kind & 0x3FFF == TCA_BPF_ID and length >= 8:
            return struct.unpack_from("=I", raw, at + 4)[0]
        at += (length + 3) & ~3
    return None


def tc_filters(ipr, index: int) -> list[TcAttachment]:
    """Every filter on the clsact ingress and egress hooks of an interface."""
    found = []
    for direction, parent in TC_PARENT.items():
        for msg in _filters(ipr, index, parent):
            if not msg["handle"]:
                continue  # the dump's per-priority header, not a filter
            kind = msg.get_attr("TCA_KIND")
            options = msg.get_attr("TCA_OPTIONS")
            bpf = kind == "bpf" and options is not None
            found.append(TcAttachment(
                direction, parent, msg["info"] >> 16, msg["handle"], kind,
                options.get_attr("TCA_BPF_NAME") if bpf else None,
                _bpf_prog_id(options) if bpf else None,
            ))
    return found


def find_filter(ipr, index: int, parent: int, prio: int, handle: int,
                prog_ids) -> TcAttachment | None:
    """The filter at these coordinates if it runs one of ``prog_ids``, else None."""
    for flt in tc_filters(ipr, index):
        if (flt.parent, flt.prio, flt.handle) == (parent, prio, handle) and \
                flt.prog_id is not None and flt.prog_id in prog_ids:
            return flt
    return None


def delete_filter_if_ours(ipr, index: int, parent: int, prio: int, handle: int,
                          prog_ids) -> bool:
    """Delete the filter at these coordinates if it runs one of ``prog_ids``."""
    if find_filter(ipr, index, parent, prio, handle, prog_ids) is None:
        return False
    del_filter(ipr, index, parent, prio, handle)
    return True


def del_filter(ipr, index: int, parent: int, prio: int, handle: int) -> None:
    try:
        ipr.tc("del-filter", "bpf", index=index, parent=parent, prio=prio, handle=handle)
    except Exception as exc:  # noqa: BLE001
        if _code(exc) in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            return
        raise AttachError(f"deleting the TC filter failed: {exc}") from None


def filters_left(ipr, index: int) -> int:
    """Filters of anyone on the clsact hooks."""
    return len(tc_filters(ipr, index))


def del_clsact(ipr, index: int) -> None:
    try:
        ipr.tc("del", "clsact", index=index)
    except Exception as exc:  # noqa: BLE001
        if _code(exc) in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            return
        raise AttachError(f"deleting the clsact qdisc failed: {exc}") from None
