"""A running instance's stage settings: the per-stage settings maps.

Each stage with runtime settings has a one-entry array map
``stage_<name>_settings_map`` holding its settings as ``__u64`` fields in the
order :meth:`StagePlugin.settings` declares them (bpf_templates/sfc_proxy.h.j2).
``up`` writes the defaults (and what :meth:`StagePlugin.initial_settings`
computes then); ``sfcframe set NAME <stage>.<setting>=VALUE`` changes one.
Values are never written to the state record or printed by ``stats``: a stage
may keep secrets there (proof of transit).
"""

from __future__ import annotations

import struct
import sys
from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.runtime import pins
from sfcframe.runtime.errors import ConfigError


def map_name(stage: str) -> str:
    return f"stage_{stage}_settings_map"


def declared(record_spec: Mapping[str, Any]) -> dict[str, tuple]:
    """{stage name: (plugin, its values, its settings Params)} of a recorded spec."""
    from sfcframe import discovery

    out = {}
    for st in record_spec.get("stages", []):
        plugin = discovery.load("stage", st["name"]).plugin
        out[st["name"]] = (plugin, st["params"], tuple(plugin.settings(st["params"])))
    return out


def _pack(params, values: Mapping[str, int]) -> bytes:
    return b"".join(int(values[p.name]).to_bytes(8, sys.byteorder) for p in params)


def read(path: str, params) -> dict[str, int]:
    table = pins.open_map(path)
    try:
        raw = table.lookup(struct.pack("=I", 0)) or bytes(8 * len(params))
    finally:
        table.close()
    return {p.name: int.from_bytes(raw[8 * i:8 * i + 8], sys.byteorder)
            for i, p in enumerate(params)}


def write(path: str, params, values: Mapping[str, int]) -> None:
    table = pins.open_map(path)
    try:
        table.update(struct.pack("=I", 0), _pack(params, values))
    finally:
        table.close()


def read_file(path: str) -> list[str]:
    """The ``SETTING=VALUE`` lines of a settings file (``sfcframe set NAME --from
    FILE``): blank lines and ``#`` comments skipped. The values are not echoed
    in errors (the file may hold secrets)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"set --from {path}: {exc.strerror}") from None
    out = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if "=" not in text or not text.split("=", 1)[0].strip():
            raise ConfigError(f"set --from {path}, line {number}: expected SETTING=VALUE")
        out.append(text)
    if not out:
        raise ConfigError(f"set --from {path}: no SETTING=VALUE lines")
    return out


def initial(maps: Mapping[str, str], record_spec: Mapping[str, Any]) -> list[str]:
    """Write every stage's defaults and initial settings; the stages written."""
    done = []
    for name, (plugin, values, params) in declared(record_spec).items():
        if not params:
            continue
        settings = {p.name: p.default for p in params}
        settings.update(plugin.initial_settings(values))
        write(maps[map_name(name)], params, settings)
        done.append(name)
    return done


def assign(maps: Mapping[str, str], record_spec: Mapping[str, Any],
           assignments: list[tuple[str, str, str]]) -> list[str]:
    """Apply ``(stage, setting, text)`` assignments (``default`` = the declared
    default); every one is validated before any is written. Returns
    ``stage.setting`` names set (never their values)."""
    stages = declared(record_spec)
    plans: dict[str, dict[str, int]] = {}
    for stage, setting, text in assignments:
        if stage not in stages:
            known = ", ".join(sorted(stages)) or "none"
            raise ConfigError(f"set: {stage}.{setting}: the instance has no stage {stage!r} "
                              f"(its stages: {known})")
        _, _, params = stages[stage]
        by_name = {p.name: p for p in params}
        if setting not in by_name:
            raise ConfigError(f"set: stage {stage} has no setting {setting!r} "
                              f"(known: {', '.join(by_name) or 'none'})")
        param = by_name[setting]
        try:
            value = param.default if text.strip().lower() == "default" else param.coerce(
                text, f"stage {stage}")
        except ParamError:  # the value is not repeated: it may be a secret
            raise ConfigError(f"set: {stage}.{setting}: expected an integer in "
                              f"{param.describe_range()} (or default)") from None
        plans.setdefault(stage, {})[setting] = value
    for stage, changes in plans.items():
        _, _, params = stages[stage]
        path = maps[map_name(stage)]
        write(path, params, {**read(path, params), **changes})
    return [f"{stage}.{name}" for stage, changes in plans.items() for name in changes]
