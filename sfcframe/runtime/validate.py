"""What a state record (or its undo copy) may contain: checked before anything is used.

A record is root's own file (:mod:`.trust`), but it is still data: every name
that reaches a path, a netlink request or an ethtool request is checked
here, and any problem makes the record unusable (``damaged``) instead of
being acted on. Paths are never taken from a record: they are derived from the
instance name (:mod:`.state`).
"""

from __future__ import annotations

import re
from typing import Any

from sfcframe.runtime import netns as ns
from sfcframe.runtime.attach import TC_PARENT
from sfcframe.runtime.offloads import MERGING, OBSERVED

#: a Linux interface name (dev_valid_name): 1-15 bytes, no '/', ':' or white space
IFNAME_RE = re.compile(r"[^/:\s]{1,15}")
#: a map or program name (a C identifier, as bcc pins them)
OBJECT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
SWITCH = ("on", "off")


def _count(value: Any, low: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _offloads(values: Any, known) -> bool:
    return isinstance(values, dict) and all(
        k in known and v in SWITCH for k, v in values.items())


def _filter_problem(flt: Any) -> str | None:
    if not isinstance(flt, dict):
        return "a filter is not an object"
    direction = flt.get("direction")
    if TC_PARENT.get(direction) != flt.get("parent"):
        return f"filter direction {direction!r} / parent {flt.get('parent')!r}"
    if not (_count(flt.get("prio")) and flt["prio"] <= 0xFFFF and _count(flt.get("handle"))):
        return "filter prio or handle"
    if not (isinstance(flt.get("function"), str) and OBJECT_RE.fullmatch(flt["function"])):
        return f"filter function {flt.get('function')!r}"
    if not _count(flt.get("prog_id")):
        return "filter prog_id"
    return None


def interface_problems(items: Any, netns: str | None) -> list[str]:
    if not isinstance(items, list):
        return ["interfaces is not a list"]
    problems = []
    for item in items:
        if not isinstance(item, dict):
            problems.append("an interface is not an object")
            continue
        name = item.get("name")
        if not (isinstance(name, str) and IFNAME_RE.fullmatch(name) and name not in (".", "..")):
            problems.append(f"interface name {name!r}")
            continue
        checks = {
            "ifindex": _count(item.get("ifindex")),
            "netns": item.get("netns") == netns,
            "xdp_mode": item.get("xdp_mode") in (None, "native", "generic"),
            "xdp_prog_id": item.get("xdp_prog_id") is None or _count(item.get("xdp_prog_id")),
            "clsact_created": isinstance(item.get("clsact_created", False), bool),
            "offloads_changed": _offloads(item.get("offloads_changed", {}), MERGING),
            "offloads_seen": _offloads(item.get("offloads_seen", {}), (*MERGING, *OBSERVED)),
            "filters": isinstance(item.get("filters", []), list),
        }
        problems += [f"{name}: {field}" for field, ok in checks.items() if not ok]
        problems += [f"{name}: {p}" for p in map(_filter_problem, item.get("filters", []) or [])
                     if p]
    return problems


def footprint_problems(data: Any, name: str) -> list[str]:
    """Problems of what ``down`` acts on: name, namespace, interfaces."""
    if not isinstance(data, dict):
        return ["not a JSON object"]
    problems = []
    if data.get("name") != name:
        problems.append(f"name {data.get('name')!r} is not {name!r}")
    netns = data.get("netns")
    if netns is not None and not ns.valid_name(netns):
        problems.append(f"netns {netns!r}")
    if data.get("netns_ino") is not None and not _count(data.get("netns_ino")):
        problems.append("netns_ino")
    return problems + interface_problems(data.get("interfaces", []), netns)


def record_problems(data: Any, name: str) -> list[str]:
    """Every problem of a state record's content (empty: usable)."""
    problems = footprint_problems(data, name)
    if problems and problems[0] == "not a JSON object":
        return problems
    for field in ("maps", "programs"):
        table = data.get(field, {})
        if not isinstance(table, dict) or not all(
                isinstance(k, str) and OBJECT_RE.fullmatch(k) for k in table):
            problems.append(f"{field}: names")
    for function, prog in (data.get("programs") or {}).items():
        if not isinstance(prog, dict) or not _count(prog.get("prog_id")):
            problems.append(f"programs.{function}: prog_id")
    spec = data.get("spec")
    if not (isinstance(spec, dict) and all(
            isinstance(spec.get(k), dict) and isinstance(spec[k].get("name"), str)
            for k in ("encap", "key"))):
        problems.append("spec")
    stages = spec.get("stages", []) if isinstance(spec, dict) else []
    if not isinstance(stages, list) or not all(
            isinstance(st, dict) and isinstance(st.get("name"), str)
            and OBJECT_RE.fullmatch(st["name"]) and isinstance(st.get("params"), dict)
            for st in stages):
        problems.append("spec.stages")
    labelled = data.get("labelled_counters", {})
    if not isinstance(labelled, dict) or not all(
            isinstance(k, str) and OBJECT_RE.fullmatch(k) and isinstance(v, dict)
            and isinstance(v.get("stage"), str) and OBJECT_RE.fullmatch(v["stage"])
            for k, v in labelled.items()):
        problems.append("labelled_counters: names")
    histograms = data.get("histograms", {})
    if not isinstance(histograms, dict) or not all(
            isinstance(k, str) and OBJECT_RE.fullmatch(k) for k in histograms):
        problems.append("histograms: names")
    return problems
