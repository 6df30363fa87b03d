"""``down``: detach, restore and unpin exactly what an instance made, proven first.

What ``down`` acts on, in order of preference:

1. the state record (``/run/sfcframe/<name>.json``), if root owns it alone
   and it is valid; a record others could have written is refused and nothing
   is done (:mod:`.trust`);
2. without a usable record, the undo copy pinned next to the maps
   (:mod:`.undo`): the same footprint (interfaces, ifindexes, namespace inode,
   clsact, offloads);
3. without either, the pinned programs alone: every interface of this
   namespace and of every named one (``/run/netns``) is searched for XDP
   programs and TC filters running them; those are removed, clsact qdiscs are
   kept (nothing proves the instance created them) and the offloads, whose
   previous values are unknown, are reported for the operator to set.

Whatever the source, an attachment is removed only if it runs one of the
instance's programs (:mod:`.ownership`), on the interface (namespace inode +
ifindex) ``up`` changed. Anything else is left alone and reported.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from sfcframe.runtime import attach, netns, offloads, ownership, pins, state, undo
from sfcframe.runtime.errors import AttachError, DamagedError, TrustError
from sfcframe.runtime.ownership import Programs
from sfcframe.runtime.signals import sigterm_as_interrupt
from sfcframe.runtime.state import Footprint, IfaceState


@dataclass
class DownReport:
    name: str
    running: bool
    done: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: steps that failed: the state is kept, `down` can be run again
    failures: list[str] = field(default_factory=list)
    #: what was not put back and cannot be by sfcframe (the operator's to do)
    unrestored: list[str] = field(default_factory=list)


def down(name: str) -> DownReport:
    state.check_name(name)
    with state.locked(), sigterm_as_interrupt():
        pdir = state.pin_dir(name)
        report = DownReport(name, running=False)
        try:
            record = state.load(name)
        except TrustError:
            raise  # root's own record or nothing: not acted on, not removed
        except DamagedError as exc:
            record = None
            report.running = True
            report.notes.append(f"{str(exc).removeprefix(name + ': ')}; working from the pins")
        if record is None and not os.path.lexists(pdir):
            if report.running:
                state.state_path(name).unlink(missing_ok=True)
                report.done.append("removed the unusable state record (nothing was pinned)")
            return report
        report.running = True
        owned = ownership.programs(name, record)
        if record is not None:
            record.status = "stopping"
            record.save()
            footprint: Footprint | None = record.footprint()
        else:
            footprint = _undo_copy(name, report)
        try:
            if footprint is not None:
                _undo_footprint(footprint, owned, report)
            else:
                _undo_found(name, owned, report)
        except AttachError as exc:
            report.failures.append(str(exc))
        if report.failures:
            return report  # keep the record and the pins: `down` can be run again
        removed, left = pins.remove_instance_dir(pdir)
        if removed:
            report.done.append(f"unpinned {pdir}")
        if left:
            report.notes.append(f"left in place (not pinned by sfcframe): {', '.join(left)}")
        state.state_path(name).unlink(missing_ok=True)
        return report


def _undo_copy(name: str, report: DownReport) -> Footprint | None:
    data = undo.read(state.pin_dir(name))
    if data is None:
        report.notes.append("no state record and no undo copy: searching every namespace "
                            "for the pinned programs")
        return None
    try:
        footprint = Footprint.from_dict(data, name)
    except DamagedError as exc:
        report.notes.append(f"{str(exc).removeprefix(name + ': ')}; searching every namespace")
        return None
    report.notes.append(f"no usable state record: using the undo copy at "
                        f"{undo.path_of(state.pin_dir(name))}")
    return footprint


def _undo_footprint(footprint: Footprint, owned: Programs, report: DownReport) -> None:
    why = ownership.same_namespace(footprint)
    if why:
        report.notes.append(why)
        return
    with netns.iproute(footprint.netns) as ipr:
        for iface in footprint.interfaces:
            index, why = ownership.device(ipr, iface)
            if index is None:
                report.notes.append(why)
                continue
            _undo_iface(ipr, iface, index, owned, report, footprint_known=True)


def _undo_found(name: str, owned: Programs, report: DownReport) -> None:
    """No footprint: find every attachment of our programs, in every named namespace."""
    if not owned:
        report.notes.append("no pinned program: nothing attached can be traced to " + name)
        return
    for ns_name in (None, *netns.named()):
        try:
            with netns.iproute(ns_name) as ipr:
                for link in ipr.get_links():
                    iface = IfaceState(link.get_attr("IFLA_IFNAME"), link["index"], ns_name)
                    if _runs_ours(ipr, iface.ifindex, owned):
                        _undo_iface(ipr, iface, iface.ifindex, owned, report,
                                    footprint_known=False)
        except AttachError:
            continue  # the namespace went away while we looked
    report.notes.append("namespaces without a name in /run/netns were not searched")


def _runs_ours(ipr, index: int, owned: Programs) -> bool:
    return any(p in owned for p in attach.xdp_programs(ipr, index).values()) or any(
        f.prog_id in owned for f in attach.tc_filters(ipr, index))


def _undo_iface(ipr, iface: IfaceState, index: int, owned: Programs, report: DownReport,
                footprint_known: bool) -> None:
    where = netns.where(iface.netns)
    label = iface.name
    try:
        now = ipr.link("get", index=index)[0].get_attr("IFLA_IFNAME")
        if now != iface.name:
            report.notes.append(f"{iface.name}{where} is now called {now}")
            label = now
        _detach_programs(ipr, iface, label, index, owned, report)
        _clsact(ipr, iface, label, index, report, footprint_known)
        if footprint_known:
            _restore_offloads(iface, label, report)
        else:
            _report_offloads(iface, label, report)
    except AttachError as exc:
        report.failures.append(f"{label}: {exc}")
    except OSError as exc:
        if exc.errno != errno.ENODEV:
            raise
        report.notes.append(f"{label}{where} is gone")


def _detach_programs(ipr, iface: IfaceState, label: str, index: int, owned: Programs,
                     report: DownReport) -> None:
    for mode, prog_id in attach.xdp_programs(ipr, index).items():
        if prog_id in owned:
            with owned.fd(prog_id) as fd:
                attach.detach_xdp(ipr, index, mode, fd)
            report.done.append(f"{label}: XDP ({mode}) detached")
        elif iface.xdp_prog_id is not None:
            report.notes.append(f"{label}: XDP program id {prog_id} is not ours (ours was "
                                f"{iface.xdp_prog_id}); left in place")
    for flt in attach.tc_filters(ipr, index):
        if flt.prog_id in owned:
            attach.del_filter(ipr, index, flt.parent, flt.prio, flt.handle)
            report.done.append(f"{label}: TC {flt.direction} filter deleted")
    recorded = {(f.parent, f.prio, f.handle) for f in iface.filters}
    for flt in attach.tc_filters(ipr, index):  # what is left at our coordinates is not ours
        if (flt.parent, flt.prio, flt.handle) in recorded:
            report.notes.append(f"{label}: the TC {flt.direction} filter at prio {flt.prio} "
                                f"runs program id {flt.prog_id}, not ours; left in place")


def _clsact(ipr, iface: IfaceState, label: str, index: int, report: DownReport,
            footprint_known: bool) -> None:
    if not attach.has_clsact(ipr, index):
        return
    if not footprint_known:
        report.notes.append(f"{label}: clsact kept (nothing proves up created it)")
    elif iface.clsact_created and attach.filters_left(ipr, index) == 0:
        attach.del_clsact(ipr, index)
        report.done.append(f"{label}: clsact deleted")
    elif iface.clsact_created:
        report.notes.append(f"{label}: clsact kept (other filters use it)")


def _restore_offloads(iface: IfaceState, label: str, report: DownReport) -> None:
    if not iface.offloads_changed:
        return
    missing = offloads.restore(iface.netns, label, iface.offloads_changed)
    if missing:
        report.failures.append(
            f"{label}: could not restore {', '.join(missing)} "
            f"({netns.hint(iface.netns, 'ethtool', '-K', label, '...')})")
    else:
        back = ", ".join(f"{k} {v}" for k, v in sorted(iface.offloads_changed.items()))
        report.done.append(f"{label}: offloads restored ({back})")


def _report_offloads(iface: IfaceState, label: str, report: DownReport) -> None:
    """Without a footprint the values before ``up`` are unknown: say what is off now."""
    try:
        now = offloads.read(iface.netns, label)
    except AttachError as exc:
        report.unrestored.append(f"{label}{netns.where(iface.netns)}: offloads unknown ({exc})")
        return
    off = [name for name in offloads.MERGING if now.get(name, ("on", True)) == ("off", False)]
    if not off:
        return
    switch = " ".join(f"{offloads.MERGING[n]} on" for n in off)
    report.unrestored.append(
        f"{label}{netns.where(iface.netns)}: {', '.join(off)} off now; up may have switched "
        f"them off, previous value unknown (no state record, no undo copy): if they were on, "
        f"`{netns.hint(iface.netns, 'ethtool', '-K', label, switch)}`"
    )
