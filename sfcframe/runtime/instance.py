"""``up`` and ``set``: every change to the host, and its undo (``down``: :mod:`.teardown`).

``up`` checks everything it can before it changes anything (root, bcc, bpffs,
the name, the namespace, the interfaces, XDP already held, the spec), then
compiles, and then changes the host one step at a time. Each step pushes its
undo onto a stack and updates the state record; any failure (or Ctrl-C) runs
the stack backwards, so an ``up`` that fails leaves the host as it found it.
Order on the way up: pin maps and programs, write settings, switch offloads
off, TC filters on every interface, then XDP on every interface (egress is in
place before ingress starts stripping). ``down`` (:mod:`.teardown`) goes the
other way. One instance per interface: an interface another instance has in
its record, or with a TC filter at sfcframe's priority, is refused before
anything changes, and every undo step checks the program id before it
removes anything, so a failed ``up`` cannot take another instance's filter.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable

from sfcframe import labelled
from sfcframe.entry import FLAG_SET, ValueLayout, static_value
from sfcframe.runtime import (attach, health, netns, offloads, pins, signals, stage_settings,
                              state, trust)
from sfcframe.runtime import undo as undo_copy
from sfcframe.runtime.config import UpRequest
from sfcframe.runtime.errors import AttachError, ConfigError, DamagedError, InstanceError
from sfcframe.runtime.state import IfaceState, Record, TcFilter
from sfcframe.runtime.teardown import DownReport, down  # noqa: F401 - the runtime's API

SETTINGS_MAP = "sfc_settings"
STATIC_MAP = "sfc_static"
INGRESS_PROG = "sfc_ingress"
#: struct sfc_value flags: set at runtime (sfc_static; the build's header applies otherwise)
VALUE_SET = FLAG_SET


class Undo:
    """A stack of ``(description, action)`` run backwards on failure."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        self.steps.append((what, action))

    def run(self) -> list[str]:
        failures = []
        while self.steps:
            what, action = self.steps.pop()
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest
                failures.append(f"{what}: {exc}")
        return failures


def preflight() -> None:
    """Root, bcc and bpffs, before anything else is looked at."""
    from sfcframe.loader import bcc_module, require_root

    require_root()
    bcc_module()
    pins.check_bpffs(state.pin_root())


def _owner(prog_id: int | None, exclude: str = "") -> str:
    """The instance whose record names program ``prog_id``, or ''."""
    for record in state.all_records():
        if record.name != exclude and any(
                p["prog_id"] == prog_id for p in record.programs.values()):
            return record.name
    return ""


def _claimed_by(netns_ino: int, netns_name: str | None, ifindex: int) -> str:
    """The instance whose record has this interface (same namespace, same ifindex), or ''."""
    for inst in health.scan():
        record = inst.record
        if record is None:
            continue
        same_ns = (record.netns_ino == netns_ino if record.netns_ino is not None
                   else record.netns == netns_name)
        if same_ns and any(i.ifindex == ifindex for i in record.interfaces):
            return record.name
    return ""


def check_interface_free(ipr, iface: IfaceState, hook: str, netns_ino: int) -> None:
    """Refuse an interface another instance (or another tool) holds at our hooks."""
    where = netns.where(iface.netns)
    mode, prog_id = attach.xdp_state(ipr, iface.ifindex)
    if prog_id and hook == "xdp":
        raise AttachError(
            attach.held_message(iface.name, iface.netns, mode, prog_id, _owner(prog_id)))
    claimed = _claimed_by(netns_ino, iface.netns, iface.ifindex)
    if claimed:
        raise AttachError(
            f"interface {iface.name}{where} is proxied by sfcframe instance {claimed} "
            f"(one instance per interface: `sfcframe down {claimed}` or proxy another one)"
        )
    for flt in attach.tc_filters(ipr, iface.ifindex):
        if flt.prio != attach.PRIO:
            continue
        owner = _owner(flt.prog_id)
        who = (f"sfcframe instance {owner}" if owner
               else f"program id {flt.prog_id}, not an sfcframe instance")
        delete = netns.hint(iface.netns, "tc", "filter", "del", "dev", iface.name,
                            flt.direction, "prio", str(attach.PRIO))
        raise AttachError(
            f"interface {iface.name}{where}: TC {flt.direction} prio {attach.PRIO} is taken "
            f"({who}); one instance per interface: proxy another interface"
            + (f" or `sfcframe down {owner}`" if owner else f" or delete it ({delete})")
        )


def write_settings(map_path: str | Path, strict: bool | None) -> None:
    """sfc_settings[0] = {set, strict}; strict None = back to the build default."""
    settings = pins.open_map(map_path)
    try:
        value = struct.pack("=II", 0, 0) if strict is None else struct.pack("=II", 1, int(strict))
        settings.update(struct.pack("=I", 0), value)
    finally:
        settings.close()


def write_static(record: Record, header: bytes | None) -> None:
    from sfcframe import discovery

    encap = discovery.load("encap", record.encap).plugin
    ethertype = encap.ethertypes(record.spec["encap"]["params"])[0]
    table = pins.open_map(record.maps[STATIC_MAP])
    try:
        table.update(struct.pack("=I", 0), static_value(header, ethertype, table.value_size))
    finally:
        table.close()


def read_static(record: Record) -> dict[str, object] | None:
    """mode=static: the header egress pushes now (hex) and where it comes from."""
    if STATIC_MAP not in record.maps:
        return None
    table = pins.open_map(record.maps[STATIC_MAP])
    try:
        layout = ValueLayout.of_size(table.value_size)
        raw = table.lookup(struct.pack("=I", 0)) or bytes(layout.size)
    finally:
        table.close()
    entry = layout.unpack(raw)
    if entry.flags & VALUE_SET:
        return {"header": entry.header.hex(), "source": "static map"}
    return {"header": record.spec.get("core", {}).get("static_header", ""),
            "source": "build default"}


def read_settings(record: Record) -> dict[str, object]:
    """The strict mode the programs apply now, and whether it was set at runtime."""
    settings = pins.open_map(record.maps[SETTINGS_MAP])
    try:
        raw = settings.lookup(struct.pack("=I", 0)) or bytes(8)
    finally:
        settings.close()
    is_set, strict = struct.unpack("=II", raw[:8])
    return {
        "strict": bool(strict) if is_set else record.default_strict,
        "source": "settings map" if is_set else "build default",
    }


def _generic_veth_warning(ipr, index: int, ifname: str, where: str) -> str | None:
    link = ipr.link("get", index=index)[0]
    info = link.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    if kind != "veth":
        return None
    return (
        f"{ifname}{where}: generic XDP on a veth sees the GSO super-frames its peer sends "
        "(the kernel keeps the peer's TSO on in generic mode): each is cached as one "
        "packet and cannot be segmented once its header is restored; switch TSO/GSO off "
        "on the peer (ethtool -K PEER tso off gso off) or use native mode"
    )



def _cache_entry(module, spec) -> dict[str, int]:
    """cache=assoc: the sizes of an entry's key and value (its map holds buckets)."""
    if spec.static or spec.cache_kind != "assoc":
        return {}
    from sfcframe.cachemap import table_key_size

    return {"key_size": table_key_size(module.table("sfc_cache")), "value_size": spec.value_size}


def up(req: UpRequest, say: Callable[[str], None] = lambda line: None) -> Record:
    from sfcframe.composer import render
    from sfcframe.loader import compile_and_load
    from sfcframe.spec import resolve_spec

    preflight()
    netns.check(req.netns)
    with state.locked(), signals.sigterm_as_interrupt():
        try:
            existing = state.load(req.name)
        except DamagedError as exc:
            raise InstanceError(f"{exc}; `sfcframe down {req.name}` first") from None
        if existing is not None:
            raise InstanceError(
                f"{req.name}: an instance of that name is running "
                f"(`sfcframe down {req.name}` first)"
            )
        pdir = state.pin_dir(req.name)
        if os.path.lexists(pdir):
            raise InstanceError(
                f"{req.name}: pins left at {pdir} without a state record; "
                f"remove them with `sfcframe down {req.name}`"
            )
        params = req.spec_params()
        spec = resolve_spec(req.encap, req.key, params, tuple(req.stages))
        hook = spec.ingress_hook
        rendered = render(spec)
        where = netns.where(req.netns)
        undo = Undo()
        module = None
        netns_ino = netns.identity(req.netns)
        with netns.iproute(req.netns) as ipr:
            try:
                ifaces = [
                    IfaceState(name, attach.link_index(ipr, name, req.netns), req.netns)
                    for name in req.interfaces
                ]
                for iface in ifaces:
                    check_interface_free(ipr, iface, hook, netns_ino)
                    # ethtool works there, and nothing refuses (fixed, --keep-offloads)
                    offloads.plan(req.netns, iface.name, not req.keep_offloads)
                module = compile_and_load(rendered)
                say(f"compiled {spec.describe()} ({module.compile_seconds:.1f} s)")
                record = Record(
                    name=req.name,
                    netns=req.netns,
                    spec=spec.as_dict(),
                    describe=spec.describe(),
                    params=dict(params),
                    ingress_outcomes=[o.name for o in spec.ingress_outcomes],
                    egress_outcomes=[o.name for o in spec.egress_outcomes],
                    extra_counters={
                        **{m: list(names) for m, names in spec.key_extra_counters.items()},
                        **{f"stage_{st.name}_counters": list(st.plugin.counters(st.values))
                           for st in spec.stages if st.plugin.counters(st.values)},
                    },
                    histograms={m: what for st in spec.stages
                                for m, what in st.plugin.histograms(st.values).items()},
                    labelled_counters={
                        labelled.map_names(st.name, name)[0]: {
                            "stage": st.name, "counter": name, "label": lc.label,
                            "max_labels": lc.max_labels, "what": lc.help}
                        for st in spec.stages
                        for name, lc in st.plugin.labelled_counters(st.values).items()},
                    default_strict=bool(spec.core["strict"]),
                    cache_entry=_cache_entry(module, spec),
                    xdp_mode_requested=req.xdp_mode,
                    pin_dir=str(pdir),
                    interfaces=ifaces,
                    netns_ino=netns_ino,
                )
                undo.push("remove the state record", record.remove)
                record.save()

                # 1. pins: a directory of our own (0700, made here), the undo copy first
                trust.private_dir(state.pin_root())
                trust.new_private_dir(pdir)
                undo.push(f"unpin {pdir}", lambda: pins.remove_instance_dir(pdir))
                undo_copy.create(pdir, len(ifaces))
                record.save()
                for name in pins.map_names(module):
                    path = pdir / "maps" / name
                    pins.pin(pins.map_fd(module, name), path)
                    record.maps[name] = str(path)
                for function, prog in module.programs.items():
                    path = pdir / "progs" / function
                    pins.pin(module.fds[function], path)
                    record.programs[function] = {
                        "prog_type": prog.prog_type,
                        "hook": prog.hook,
                        "prog_id": pins.prog_id(module.fds[function]),
                        "pin": str(path),
                    }
                record.save()

                # 2. settings (the stages': defaults, and what they compute now)
                write_settings(record.maps[SETTINGS_MAP], record.default_strict)
                record.settings = {"strict": record.default_strict}
                stage_settings.initial(record.maps, record.spec)

                # Each step below is recorded and its undo pushed BEFORE it is
                # taken (every undo tolerates a step that did not happen), so a
                # signal between the kernel call and the bookkeeping, or a kill,
                # cannot leave an untracked change behind.

                # 3. offloads
                for iface in ifaces:
                    seen, change = offloads.plan(req.netns, iface.name, not req.keep_offloads)
                    iface.offloads_seen, iface.offloads_changed = seen, change
                    if change:
                        record.save()
                        undo.push(
                            f"restore offloads on {iface.name}",
                            lambda i=iface: offloads.restore(req.netns, i.name, i.offloads_changed),
                        )
                        offloads.apply(req.netns, iface.name, change)
                        say(f"{iface.name}{where}: switched off {', '.join(sorted(change))}")
                    record.save()

                # 4. TC on every interface, 5. the ingress program on every interface
                for iface in ifaces:
                    _attach_tc(ipr, iface, module, undo, record)
                ingress_fd = module.fds[INGRESS_PROG]
                if hook == "tc":
                    # a SCHED_CLS filter on clsact ingress, same prio/handle scheme
                    for iface in ifaces:
                        _attach_tc(ipr, iface, module, undo, record, ingress=True)
                        say(f"{iface.name}{where}: ingress on tc clsact ingress")
                for iface in ifaces if hook == "xdp" else ():
                    iface.xdp_prog_id = record.programs[INGRESS_PROG]["prog_id"]
                    record.save()
                    undo.push(  # ingress_fd is the loaded program: its id is xdp_prog_id
                        f"detach XDP from {iface.name}",
                        lambda i=iface: attach.detach_xdp_if_ours(
                            ipr, i.ifindex, i.xdp_prog_id, ingress_fd
                        ),
                    )
                    iface.xdp_mode = attach.attach_xdp(
                        ipr, iface.ifindex, iface.name, req.netns, ingress_fd, req.xdp_mode
                    )
                    record.save()
                    if iface.xdp_mode == "generic":
                        warning = _generic_veth_warning(ipr, iface.ifindex, iface.name, where)
                        if warning:
                            record.warnings.append(warning)
                            say(f"warning: {warning}")
                record.status = "up"
                record.save()
                return record
            except BaseException as exc:
                with signals.ignored():
                    failures = undo.run()
                if failures and isinstance(exc, Exception):
                    raise AttachError(
                        f"{exc}; rolling back also failed: {'; '.join(failures)}"
                    ) from None
                raise
            finally:
                if module is not None:
                    module.close()


def _attach_tc(ipr, iface: IfaceState, module, undo: Undo, record: Record,
               ingress: bool = False) -> None:
    """The TC programs other than the core's ingress one, or (``ingress``) only
    the core's ingress program when it is a TC one (core parameter ingress=tc):
    egress is in place on every interface before any ingress starts stripping."""
    tc_programs = [
        p for p in module.programs.values()
        if p.hook in attach.HOOK_DIRECTION and (p.function == INGRESS_PROG) == ingress
    ]
    if not tc_programs:
        return
    if not attach.has_clsact(ipr, iface.ifindex):
        iface.clsact_created = True
        record.save()
        undo.push(f"delete clsact on {iface.name}", lambda: attach.del_clsact(ipr, iface.ifindex))
        attach.ensure_clsact(ipr, iface.ifindex)
    for prog in tc_programs:
        direction = attach.HOOK_DIRECTION[prog.hook]
        parent = attach.TC_PARENT[direction]
        flt = TcFilter(
            direction, parent, attach.PRIO, attach.HANDLE, prog.function,
            record.programs[prog.function]["prog_id"],
        )
        iface.filters.append(flt)
        record.save()
        undo.push(  # only a filter running our program: never one found at our coordinates
            f"delete TC {direction} filter on {iface.name}",
            lambda flt=flt: attach.delete_filter_if_ours(
                ipr, iface.ifindex, flt.parent, flt.prio, flt.handle, {flt.prog_id}),
        )
        attach.add_filter(ipr, iface.ifindex, direction, module.fds[prog.function], prog.function)
    record.save()


# ---- set ------------------------------------------------------------------
SETTINGS = {"strict": "true | false | default (the build's value)",
            "STAGE.SETTING": "a stage's runtime setting (sfcframe plugins lists them) or default"}


def parse_setting(text: str) -> tuple[str, bool | None]:
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip().lower()
    if sep and "." in name:  # a stage's setting: validated against the stage (set_settings)
        return name, value
    if not sep or name not in SETTINGS:
        known = ", ".join(f"{k}={v}" for k, v in SETTINGS.items())
        raise ConfigError(f"set: expected SETTING=VALUE with one of: {known}; got {text!r}")
    if value in ("true", "1", "yes", "on"):
        return name, True
    if value in ("false", "0", "no", "off"):
        return name, False
    if value == "default":
        return name, None
    raise ConfigError(f"set: {name}={value!r}: use true, false or default")


def parse_static_header(record: Record, text: str) -> bytes | None:
    """``set --static-header TEXT`` for this instance: None for ``default``
    (the build's header), b"" for ``none``, else the wire bytes (ConfigError
    with the plugin's message when the text is not a valid header)."""
    from sfcframe.errors import ParamError
    from sfcframe.spec import parse_static_header as parse

    if record.mode != "static":
        raise ConfigError(
            f"set: {record.name} is not a static proxy (mode={record.mode}); "
            "--static-header applies to mode=static"
        )
    if text.strip().lower() == "default":
        return None
    if text.strip().lower() in ("none", ""):
        return b""
    spec = record.resolved_spec()
    try:
        return parse(spec.encap, spec.encap_params, spec.core, text)
    except ParamError as exc:
        raise ConfigError(f"set --static-header: {exc}") from None


def set_settings(name: str, assignments: list[str], static_header: str | None = None) -> Record:
    parsed = [parse_setting(a) for a in assignments]
    if not parsed and static_header is None:
        raise ConfigError("set: nothing to set (e.g. strict=true, or --static-header 100,200)")
    with state.locked():
        record = health.require(name)
        if static_header is not None:
            header = parse_static_header(record, static_header)
            write_static(record, header)
            record.settings["static_header"] = "default" if header is None else header.hex()
        staged = [(*setting.split(".", 1), value) for setting, value in parsed if "." in setting]
        if staged:  # validated before anything is written; values stay out of the record
            record.settings["stages_set"] = sorted(set(record.settings.get("stages_set", []))
                                                   | set(stage_settings.assign(
                                                       record.maps, record.spec, staged)))
        for setting, value in parsed:
            if setting == "strict":
                write_settings(record.maps[SETTINGS_MAP], value)
                record.settings["strict"] = record.default_strict if value is None else value
        record.save()
        return record
