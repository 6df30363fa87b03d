"""A build spec: which encapsulation, which key, and every parameter, validated."""

from __future__ import annotations

import dataclasses
import re
import sys

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from sfcframe import discovery
from sfcframe.discovery import LoadedPlugin
from sfcframe.errors import ParamError
from sfcframe.outcomes import (
    EGRESS,
    GSO,
    INGRESS,
    STATIC_EGRESS,
    STATIC_INGRESS,
    Outcome,
    compose,
)
from sfcframe.entry import CAPACITY_MAX, ValueLayout
from sfcframe.params import Param, resolve
from sfcframe.plugin import ProgramSpec

#: cache=assoc: default age (ms) beyond which an entry is stale
DEFAULT_HORIZON_MS = 1000

CORE_PARAMS = (
    Param("cache_size", "int", 10000, "cache entries (cache=assoc: rounded up to whole "
          "buckets of 16)", 1, 1 << 24),
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
    Param(
        "cache",
        "choice",
        "auto",
        "where entries live: assoc (a two-choice set-associative table in an array the "
        "program manages, any key: exact lookups, aged entries), lru (the kernel's LRU hash "
        "map, any key), ring (an array indexed by the packet's id, FIFO eviction; keys that "
        "draw a fresh id per packet, e.g. metadata), auto (ring when the key allows it, "
        "else lru: assoc does not beat lru on every figure yet, see BENCHMARKS.md)",
        choices=("auto", "assoc", "lru", "ring"),
    ),
    Param(
        "cache_horizon_ms",
        "int",
        DEFAULT_HORIZON_MS,
        "cache=assoc: entries older than this many milliseconds are stale (their packet "
        "was dropped or is overdue) and are reclaimed when an insert touches their bucket "
        "(ages are kept in ~4.2 ms units, so at most 120000)",
        1,
        120_000,
    ),
    Param(
        "ingress",
        "choice",
        "xdp",
        "hook of the ingress program: xdp (XDP) or tc (TC clsact ingress, SCHED_CLS)",
        choices=("xdp", "tc"),
    ),
    Param(
        "mode",
        "choice",
        "cache",
        "cache (the caching proxy) or static (strip every header at ingress, push one "
        "configured header at egress; no cache, no key)",
        choices=("cache", "static"),
    ),
    Param(
        "static_header",
        "text",
        "",
        "mode=static: the header egress pushes until `sfcframe set --static-header` "
        "changes it, in the encapsulation's notation (mpls: labels 100,200,300; "
        "any encap: hex); empty: none (egress passes frames as not_configured)",
    ),
)
#: core parameters a spec's one-line description names only when not at their default
_QUIET_DEFAULTS = {"ingress": "xdp", "mode": "cache", "static_header": "", "cache": "lru",
                   "cache_horizon_ms": DEFAULT_HORIZON_MS}


#: most bytes one stage may add to a cache entry
STAGE_AREA_MAX = 64


@dataclass
class ResolvedStage:
    """A stage of a build: its plugin, validated values, the carrier it rides and
    its bytes in the entry's area (``val->area[offset .. offset + size)``)."""

    loaded: LoadedPlugin
    values: dict[str, Any]
    carrier: str
    offset: int
    size: int

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def plugin(self):
        return self.loaded.plugin

    @property
    def settings(self) -> tuple[Param, ...]:
        return tuple(self.plugin.settings(self.values))

    def default_settings(self) -> dict[str, int]:
        return {p.name: p.default for p in self.settings}

    def pack_settings(self, settings: Mapping[str, int]) -> bytes:
        """The value of its settings map (``struct stage_<name>_settings``): one
        host-order ``__u64`` per setting, in order; missing ones at their defaults."""
        values = {**self.default_settings(), **settings}
        return b"".join(int(values[p.name]).to_bytes(8, sys.byteorder) for p in self.settings)


@dataclass
class ResolvedSpec:
    encap: LoadedPlugin
    key: LoadedPlugin
    encap_params: dict[str, Any]
    key_params: dict[str, Any]
    core: dict[str, Any]
    ingress_outcomes: list[Outcome] = field(default_factory=list)
    egress_outcomes: list[Outcome] = field(default_factory=list)
    #: mode=static: the build's default header (wire bytes after the Ethernet header)
    static_bytes: bytes = b""
    #: metadata stages, in the order they run
    stages: list[ResolvedStage] = field(default_factory=list)

    @property
    def ingress_hook(self) -> str:
        return self.core.get("ingress", "xdp")

    @property
    def area_bytes(self) -> int:
        """Bytes the stages add to an entry (val->area), 8-aligned per stage."""
        if not self.stages:
            return 0
        last = self.stages[-1]
        return last.offset + (last.size + 7) // 8 * 8

    @property
    def value_layout(self) -> ValueLayout:
        """struct sfc_value of this build (sfcframe.entry)."""
        return ValueLayout(self.header_capacity, self.area_bytes)

    @property
    def value_size(self) -> int:
        """sizeof(struct sfc_value): head, header; aligned(4)."""
        return self.value_layout.size

    @property
    def ethertypes(self) -> tuple[int, ...]:
        """Outer ethertypes the encapsulation claims in this build."""
        return tuple(self.encap.plugin.ethertypes(self.encap_params))

    @property
    def cache_kind(self) -> str:
        """assoc, lru or ring (resolved from auto); static mode has no cache."""
        return self.core.get("cache", "lru")

    @property
    def cache_gen_shift(self) -> int:
        """cache=assoc: a generation is 2**cache_gen_shift ns of the coarse monotonic clock."""
        from sfcframe.cachemap import GEN_SHIFT

        return GEN_SHIFT

    @property
    def cache_horizon(self) -> int:
        """cache=assoc: the stale horizon in generations (sfcframe.cachemap.GEN_NS ns each)."""
        from sfcframe.cachemap import horizon_generations

        return horizon_generations(self.core.get("cache_horizon_ms", DEFAULT_HORIZON_MS))

    @property
    def static(self) -> bool:
        return self.core.get("mode", "cache") == "static"

    @property
    def header_capacity(self) -> int:
        return header_capacity(self.encap, self.encap_params, self.core)

    @property
    def max_strip(self) -> int:
        return self.encap.plugin.max_strip(self.encap_params)

    @property
    def programs(self) -> list[ProgramSpec]:
        if self.ingress_hook == "tc":
            ingress = ProgramSpec("sfc_ingress", "sched_cls", "tc-ingress")
        else:
            ingress = ProgramSpec("sfc_ingress", "xdp", "xdp")
        core = [ingress, ProgramSpec("sfc_egress", "sched_cls", "tc-egress")]
        return core + self.key_extra_programs

    @property
    def key_extra_programs(self) -> list[ProgramSpec]:
        """The key's own programs in this build (none in static mode)."""
        if self.static:
            return []
        return self.key.plugin.extra_programs(self.key_params, self.core)

    @property
    def key_extra_counters(self) -> dict[str, tuple[str, ...]]:
        """The key's own counter maps in this build (none in static mode)."""
        if self.static:
            return {}
        return self.key.plugin.extra_counters(self.key_params, self.core)

    def describe(self) -> str:
        """One line naming everything the output depends on, in a fixed order."""

        def fmt(values: Mapping[str, Any]) -> str:
            return ",".join(f"{k}={_text(v)}" for k, v in sorted(values.items()))

        def named(loaded: LoadedPlugin, values: Mapping[str, Any]) -> dict[str, Any]:
            quiet = {p.name for p in loaded.plugin.params if p.quiet and values.get(p.name) == p.default}
            return {k: v for k, v in values.items() if k not in quiet}

        core = {k: v for k, v in self.core.items() if _QUIET_DEFAULTS.get(k, object()) != v}
        stages = "".join(f" stage={st.name}({fmt(st.values)})" for st in self.stages)
        return (
            f"encap={self.encap.name}({fmt(named(self.encap, self.encap_params))}) "
            f"key={self.key.name}({fmt(named(self.key, self.key_params))}){stages} "
            f"{fmt(core).replace(',', ' ')}"
        )

    def with_core(self, **changes: Any) -> "ResolvedSpec":
        """This build with some core parameters changed (each validated against
        its declaration), e.g. the cache size a recommendation names; what the
        change derives (the description) follows from the copy."""
        declared = {p.name: p for p in CORE_PARAMS}
        unknown = sorted(set(changes) - set(declared))
        if unknown:
            raise ParamError(f"core: unknown parameter {unknown[0]!r}")
        core = {**self.core, **{name: declared[name].coerce(value, "core")
                                for name, value in changes.items()}}
        return dataclasses.replace(self, core=core)

    def as_dict(self) -> dict[str, Any]:
        """The build as JSON values (ints and bools stay typed); :func:`spec_from_dict`
        resolves it again."""
        out = {
            "encap": {"name": self.encap.name, "params": self.encap_params},
            "key": {"name": self.key.name, "params": self.key_params},
            "core": self.core,
        }
        if self.stages:
            out["stages"] = [{"name": st.name, "params": st.values, "carrier": st.carrier}
                             for st in self.stages]
        return out


def spec_params(data: Mapping[str, Any], stages: bool = True) -> dict[str, Any]:
    """Every parameter of a spec document (:meth:`ResolvedSpec.as_dict`), typed and
    qualified by its owner (``core.cache_size``, ``encap.pop``, ``<stage>.NAME``);
    ``stages=False`` leaves the stages' out."""
    out = {f"core.{name}": value for name, value in data.get("core", {}).items()}
    if out.get("core.static_header"):  # the bytes pushed, hex: every encap reads 0x...
        out["core.static_header"] = "0x" + out["core.static_header"]
    for owner in ("encap", "key"):
        out.update({f"{owner}.{name}": value
                    for name, value in data[owner].get("params", {}).items()})
    for stage in data.get("stages", []) if stages else ():
        out.update({f"{stage['name']}.{name}": value
                    for name, value in stage.get("params", {}).items()})
    return out


def spec_from_dict(data: Mapping[str, Any]) -> ResolvedSpec:
    """The build a spec document (:meth:`ResolvedSpec.as_dict`) describes, its typed
    values validated again against the installed plugins (ParamError if they no
    longer resolve)."""
    stages = tuple(stage["name"] for stage in data.get("stages", []))
    return resolve_spec(data["encap"]["name"], data["key"]["name"], spec_params(data), stages)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def header_capacity(encap: LoadedPlugin, values: Mapping[str, Any],
                    core: Mapping[str, Any]) -> int:
    """Bytes of header one struct sfc_value holds. A static proxy pushes a whole
    header (nothing popped), so it holds up to what ingress may strip too."""
    capacity = encap.plugin.header_capacity(values)
    if core.get("mode") == "static":
        capacity = max(capacity, min(encap.plugin.max_strip(values), CAPACITY_MAX))
    return capacity


def parse_static_header(encap: LoadedPlugin, values: Mapping[str, Any],
                        core: Mapping[str, Any], text: str) -> bytes:
    """The wire bytes of a static header given as text (ParamError if invalid)."""
    if not text.strip() or text.strip().lower() == "none":
        return b""
    header = bytes(encap.plugin.static_header(text, values))
    capacity = header_capacity(encap, values, core)
    if len(header) > capacity:
        raise ParamError(
            f"encap {encap.name}: static header of {len(header)} bytes exceeds the "
            f"entry capacity of {capacity} bytes"
        )
    return header


def split_params(
    raw: Mapping[str, str], encap: LoadedPlugin, key: LoadedPlugin,
    stages: Sequence[LoadedPlugin] = (),
) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
    """Route ``name=value`` pairs to the core, the encap, the key or a stage.

    ``encap.name`` / ``key.name`` / ``<plugin>.name`` qualify an ambiguous name.
    Returns (core, encap, key, {stage name: its pairs}).
    """
    owners = {
        "core": {p.name for p in CORE_PARAMS},
        "encap": {p.name for p in encap.plugin.params},
        "key": {p.name for p in key.plugin.params},
        **{f"stage {st.name}": {p.name for p in st.plugin.params} for st in stages},
    }
    aliases = {"core": "core", "encap": "encap", "key": "key", encap.name: "encap", key.name: "key",
               **{st.name: f"stage {st.name}" for st in stages}}
    routed: dict[str, dict[str, str]] = {owner: {} for owner in owners}
    for name, value in raw.items():
        if "." in name:
            prefix, _, bare = name.partition(".")
            if prefix not in aliases:
                raise ParamError(f"parameter {name!r}: unknown qualifier {prefix!r}")
            routed[aliases[prefix]][bare] = value
            continue
        matches = [o for o, names in owners.items() if name in names]
        if len(matches) > 1:
            first = matches[0].split()[-1]
            raise ParamError(
                f"parameter {name!r} is declared by {' and '.join(matches)}: "
                f"qualify it, e.g. {first}.{name}=..."
            )
        if not matches:
            known = sorted(set().union(*owners.values()))
            where = f"encap {encap.name} and key {key.name}" + "".join(
                f", stage {st.name}" for st in stages)
            raise ParamError(
                f"unknown parameter {name!r} for {where} (known: {', '.join(known)})"
            )
        routed[matches[0]][name] = value
    stage_raw = {st.name: routed[f"stage {st.name}"] for st in stages}
    return routed["core"], routed["encap"], routed["key"], stage_raw


def resolve_cache(key: LoadedPlugin, core: Mapping[str, Any]) -> str:
    """cache=auto -> ring if the key allows it, else lru; ring with any other key is an
    error; the stale horizon applies to assoc only."""
    capable = key.plugin.ring_capable
    if core["cache"] == "auto":
        kind = "ring" if capable else "lru"
    else:
        kind = core["cache"]
    if kind != "assoc" and core["cache_horizon_ms"] != DEFAULT_HORIZON_MS:
        raise ParamError(
            f"core: cache_horizon_ms applies to cache=assoc only (this build: cache={kind})")
    if core["cache"] == "auto":
        return kind
    if core["cache"] == "ring" and not capable:
        raise ParamError(
            f"core: cache=ring needs a key that draws a fresh id per packet from one sequence "
            f"(KeyPlugin.ring_capable, e.g. metadata); key {key.name} needs cache=assoc or lru"
        )
    return core["cache"]


def resolve_spec(
    encap: str, key: str, params: Mapping[str, Any] | None = None,
    stages: Sequence[str] = (),
) -> ResolvedSpec:
    """Load the plugins and validate every parameter before anything renders."""
    encap_p = discovery.load("encap", encap)
    key_p = discovery.load("key", key)
    if len(set(stages)) != len(stages):
        raise ParamError(f"stage listed twice in {', '.join(stages)}")
    stage_ps = [discovery.load("stage", name) for name in stages]
    core_raw, encap_raw, key_raw, stage_raw = split_params(dict(params or {}), encap_p, key_p,
                                                            stage_ps)
    core = resolve(CORE_PARAMS, core_raw, "core")
    encap_values = _resolve_plugin(encap_p, encap_raw, core, f"encap {encap}")
    key_values = _resolve_plugin(key_p, key_raw, core, f"key {key}")
    if core["mode"] != "static":  # a static proxy has no key: nothing to refuse
        key_p.plugin.validate_core(key_values, core)
    encap_p.plugin.validate_core(encap_values, core)
    capacity = header_capacity(encap_p, encap_values, core)
    if not 0 <= capacity <= CAPACITY_MAX:
        raise ParamError(
            f"encap {encap}: header capacity {capacity} bytes is outside 0..{CAPACITY_MAX} "
            "(a cache entry is built on the BPF stack)"
        )
    resolved_stages = _resolve_stages(stage_ps, stage_raw, encap_p, encap_values, core)
    _check_claims([(f"encap {encap}", encap_p, encap_values),
                   *([(f"key {key}", key_p, key_values)] if core["mode"] != "static" else []),
                   *((f"stage {st.name}", st.plugin, st.values) for st in resolved_stages)])
    static_bytes = b""
    if core["mode"] == "static":
        if resolved_stages:
            raise ParamError("core: stages act on cached headers; mode=static caches none")
        static_bytes = parse_static_header(encap_p, encap_values, core, core["static_header"])
        core["static_header"] = static_bytes.hex()  # canonical: the bytes pushed
        if core.pop("cache") != "auto":
            raise ParamError("core: parameter cache does not apply to mode=static (no cache)")
        if core.pop("cache_horizon_ms") != DEFAULT_HORIZON_MS:
            raise ParamError("core: parameter cache_horizon_ms does not apply to mode=static "
                             "(no cache)")
        return ResolvedSpec(
            encap=encap_p,
            key=key_p,
            encap_params=encap_values,
            key_params=key_values,
            core=core,
            ingress_outcomes=compose(
                STATIC_INGRESS, _sourced(encap_p.plugin.ingress_outcomes(encap_values), encap)),
            egress_outcomes=compose(
                STATIC_EGRESS, _sourced(encap_p.plugin.egress_outcomes(encap_values), encap)),
            static_bytes=static_bytes,
        )
    if core["static_header"]:
        raise ParamError("core: parameter static_header only applies to mode=static")
    core["cache"] = resolve_cache(key_p, core)
    if core["cache"] != "assoc":  # the horizon is the assoc table's alone
        core.pop("cache_horizon_ms")
    ingress = INGRESS if core["ingress"] == "xdp" else (*INGRESS, GSO)
    return ResolvedSpec(
        encap=encap_p,
        key=key_p,
        encap_params=encap_values,
        key_params=key_values,
        core=core,
        ingress_outcomes=compose(ingress, [
            *_sourced(encap_p.plugin.ingress_outcomes(encap_values), encap),
            *(o for st in resolved_stages
              for o in _sourced(st.plugin.ingress_outcomes(st.values), st.name))]),
        egress_outcomes=compose(EGRESS, [
            *_sourced(encap_p.plugin.egress_outcomes(encap_values), encap),
            *(o for st in resolved_stages
              for o in _sourced(st.plugin.egress_outcomes(st.values), st.name))]),
        stages=resolved_stages,
    )


def _resolve_stages(loaded: Sequence[LoadedPlugin], raw: Mapping[str, Mapping[str, str]],
                    encap: LoadedPlugin, encap_values: Mapping[str, Any],
                    core: Mapping[str, Any]) -> list["ResolvedStage"]:
    """Each stage's values, the carrier it rides in this encapsulation and where its
    bytes sit in the entry's area, in the order given."""
    offered = encap.plugin.carriers(encap_values)
    out, offset = [], 0
    for st in loaded:
        values = _resolve_plugin(st, raw.get(st.name, {}), core, f"stage {st.name}")
        st.plugin.validate_core(values, core)
        carrier = next((c for c in st.plugin.carriers if c in offered), None)
        if carrier is None:
            raise ParamError(
                f"stage {st.name} rides {' or '.join(st.plugin.carriers) or 'no carrier'}; "
                f"encap {encap.name} offers {', '.join(offered) or 'none'}")
        size = st.plugin.entry_bytes(values)
        if not 0 <= size <= STAGE_AREA_MAX:
            raise ParamError(f"stage {st.name}: entry_bytes {size} outside 0..{STAGE_AREA_MAX}")
        _check_labelled(st.name, st.plugin.labelled_counters(values))
        out.append(ResolvedStage(st, values, carrier, offset, size))
        offset += (size + 7) // 8 * 8  # each stage's bytes 8-aligned within the area
    return out


def _check_claims(parts: Sequence[tuple[str, Any, Mapping[str, Any]]]) -> None:
    """Refuse two plugins of one build claiming the same per-packet resource
    (:meth:`~sfcframe.plugin._Plugin.claims`, e.g. ``skb.mark``)."""
    owner: dict[str, str] = {}
    for what, plugin, values in parts:
        plugin = getattr(plugin, "plugin", plugin)  # a LoadedPlugin or the plugin itself
        for resource in sorted(plugin.claims(values)):
            if resource in owner:
                raise ParamError(
                    f"{owner[resource]} and {what} both use {resource} across the function "
                    "(one would overwrite the other's value): change one of them")
            owner[resource] = what


#: bounds of a stage's labelled counters (StagePlugin.labelled_counters())
LABEL_BYTES_MAX = 64
LABELS_MAX = 1 << 20
_C_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")


def _check_labelled(stage: str, declared: Mapping[str, Any]) -> None:
    """A stage's labelled counters: C names, label names Prometheus takes, bounded sizes."""
    for name, lc in declared.items():
        if not (_C_NAME.fullmatch(name) and _C_NAME.fullmatch(lc.label)):
            raise ParamError(f"stage {stage}: labelled counter {name!r} / label {lc.label!r}: "
                             "use lower-case letters, digits and '_'")
        if not 1 <= lc.size <= LABEL_BYTES_MAX or not 1 <= lc.max_labels <= LABELS_MAX:
            raise ParamError(f"stage {stage}: labelled counter {name}: label size {lc.size} "
                             f"outside 1..{LABEL_BYTES_MAX} or max_labels {lc.max_labels} "
                             f"outside 1..{LABELS_MAX}")


def _sourced(outcomes: list[Outcome], source: str) -> list[Outcome]:
    """A plugin's outcomes, labelled with the plugin they came from."""
    return [Outcome(o.name, o.policy, o.help, source=source) for o in outcomes]


def _resolve_plugin(loaded: LoadedPlugin, raw: Mapping[str, Any], core: Mapping[str, Any],
                    owner: str) -> dict[str, Any]:
    """A plugin's values: its core-dependent defaults under what the user gave, validated."""
    defaults = {k: v for k, v in loaded.plugin.core_defaults(core).items() if k not in raw}
    values = resolve(loaded.plugin.params, {**defaults, **raw}, owner)
    loaded.plugin.validate(values)
    return values
