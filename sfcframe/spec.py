"""A build spec: which encapsulation, which key, and every parameter, validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from sfcframe import discovery
from sfcframe.discovery import LoadedPlugin
from sfcframe.errors import ParamError
from sfcframe.outcomes import EGRESS, INGRESS, Outcome, compose
from sfcframe.params import Param, resolve
from sfcframe.plugin import ProgramSpec

CORE_PARAMS = (
    Param("cache_size", "int", 10000, "cache entries (LRU hash map max_entries)", 1, 1 << 24),
    Param(
        "strict",
        "bool",
        False,
        "drop (true) or pass unmodified (false) malformed packets and egress misses",
    ),
    Param(
        "track_plain",
        "bool",
        True,
        "mark packets that arrive without encapsulation so egress passes them "
        "instead of counting a miss",
    ),
)


@dataclass
class ResolvedSpec:
    encap: LoadedPlugin
    key: LoadedPlugin
    encap_params: dict[str, Any]
    key_params: dict[str, Any]
    core: dict[str, Any]
    ingress_outcomes: list[Outcome] = field(default_factory=list)
    egress_outcomes: list[Outcome] = field(default_factory=list)

    @property
    def header_capacity(self) -> int:
        return self.encap.plugin.header_capacity(self.encap_params)

    @property
    def max_strip(self) -> int:
        return self.encap.plugin.max_strip(self.encap_params)

    @property
    def programs(self) -> list[ProgramSpec]:
        core = [
            ProgramSpec("sfc_ingress", "xdp", "xdp"),
            ProgramSpec("sfc_egress", "sched_cls", "tc-egress"),
        ]
        return core + self.key.plugin.extra_programs(self.key_params)

    def describe(self) -> str:
        """One line naming everything the output depends on, in a fixed order."""

        def fmt(values: Mapping[str, Any]) -> str:
            return ",".join(f"{k}={_text(v)}" for k, v in sorted(values.items()))

        return (
            f"encap={self.encap.name}({fmt(self.encap_params)}) "
            f"key={self.key.name}({fmt(self.key_params)}) {fmt(self.core).replace(',', ' ')}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "encap": {"name": self.encap.name, "params": self.encap_params},
            "key": {"name": self.key.name, "params": self.key_params},
            "core": self.core,
        }


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def split_params(
    raw: Mapping[str, str], encap: LoadedPlugin, key: LoadedPlugin
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Route ``name=value`` pairs to the encap, the key or the core.

    ``encap.name`` / ``key.name`` / ``<plugin>.name`` qualify an ambiguous name.
    """
    owners = {
        "core": {p.name for p in CORE_PARAMS},
        "encap": {p.name for p in encap.plugin.params},
        "key": {p.name for p in key.plugin.params},
    }
    aliases = {"core": "core", "encap": "encap", "key": "key", encap.name: "encap", key.name: "key"}
    routed: dict[str, dict[str, str]] = {"core": {}, "encap": {}, "key": {}}
    for name, value in raw.items():
        if "." in name:
            prefix, _, bare = name.partition(".")
            if prefix not in aliases:
                raise ParamError(f"parameter {name!r}: unknown qualifier {prefix!r}")
            routed[aliases[prefix]][bare] = value
            continue
        matches = [o for o, names in owners.items() if name in names]
        if len(matches) > 1:
            raise ParamError(
                f"parameter {name!r} is declared by {' and '.join(matches)}: "
                f"qualify it, e.g. {matches[0]}.{name}=..."
            )
        if not matches:
            known = sorted(owners["core"] | owners["encap"] | owners["key"])
            raise ParamError(
                f"unknown parameter {name!r} for encap {encap.name} and key {key.name} "
                f"(known: {', '.join(known)})"
            )
        routed[matches[0]][name] = value
    return routed["core"], routed["encap"], routed["key"]


def resolve_spec(
    encap: str, key: str, params: Mapping[str, Any] | None = None
) -> ResolvedSpec:
    """Load both plugins and validate every parameter before anything renders."""
    encap_p = discovery.load("encap", encap)
    key_p = discovery.load("key", key)
    core_raw, encap_raw, key_raw = split_params(dict(params or {}), encap_p, key_p)
    core = resolve(CORE_PARAMS, core_raw, "core")
    encap_values = resolve(encap_p.plugin.params, encap_raw, f"encap {encap}")
    key_values = resolve(key_p.plugin.params, key_raw, f"key {key}")
    encap_p.plugin.validate(encap_values)
    key_p.plugin.validate(key_values)
    capacity = encap_p.plugin.header_capacity(encap_values)
    if not 0 <= capacity <= 252:
        raise ParamError(
            f"encap {encap}: header capacity {capacity} bytes is outside 0..252 "
            "(the cache entry stores its length in one byte)"
        )
    extra_egress = [
        Outcome(o.name, o.policy, o.help, source=encap)
        for o in encap_p.plugin.egress_outcomes(encap_values)
    ]
    return ResolvedSpec(
        encap=encap_p,
        key=key_p,
        encap_params=encap_values,
        key_params=key_values,
        core=core,
        ingress_outcomes=compose(INGRESS, []),
        egress_outcomes=compose(EGRESS, extra_egress),
    )
