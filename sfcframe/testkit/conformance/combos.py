"""Which builds the conformance kit runs, discovered from the installed plugins.

A :class:`Combo` is one build: an encapsulation, a key, the stages riding it (none
or one) and the parameters: each plugin's from one of its
``conformance_params()`` sets, the core's from :func:`core_variants`.
:func:`valid_combos` lists every combination of the installed plugins that the core
accepts (``resolve_spec`` raising ParamError means "not a valid combination", not a
failure) and that BPF_PROG_TEST_RUN can drive; :func:`representative` keeps a
subset in which every parameter set of every plugin still meets every other plugin,
every hook and every cache kind (pairwise coverage), so the number of kernel builds
grows with the number of parameter sets, not with their product.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from sfcframe import discovery
from sfcframe.errors import ParamError
from sfcframe.spec import CORE_PARAMS, ResolvedSpec, resolve_spec

#: the distribution of the built-in plugins (and of the core's hooks and cache kinds)
CORE_DISTRIBUTION = "sfcframe"
#: core parameters the kit varies, each over every choice CORE_PARAMS declares (so a
#: new hook or cache kind is tested as soon as it is declared there); "auto" only
#: stands for one of the others
VARIED_CORE_PARAMS = ("ingress", "cache")
#: further core parameters a hook or cache kind needs in the kit's builds:
#: {(name, choice): {parameter: value}}; none today
CORE_VARIANT_PARAMS: dict[tuple[str, str], dict[str, Any]] = {}


def core_variants() -> list[dict[str, Any]]:
    """Every combination of the varied core parameters' choices."""
    declared = {p.name: p for p in CORE_PARAMS}
    axes = [[(name, choice) for choice in declared[name].choices if choice != "auto"]
            for name in VARIED_CORE_PARAMS]
    out = []
    for picked in itertools.product(*axes):
        variant: dict[str, Any] = {}
        for name, choice in picked:
            variant.update(CORE_VARIANT_PARAMS.get((name, choice), {}))
            variant[name] = choice
        out.append(variant)
    return out


@dataclass(frozen=True)
class PluginChoice:
    """One plugin with one of its conformance parameter sets."""

    kind: str  # encap | key | stage
    name: str
    distribution: str
    index: int  # which of conformance_params()
    values: Mapping[str, Any]

    @property
    def label(self) -> str:
        shown = ",".join(f"{k}={v}" for k, v in sorted(self.values.items()))
        return f"{self.name}[{shown}]" if shown else self.name


@dataclass(frozen=True, repr=False)
class Combo:
    """One build the kit runs every property on."""

    encap: PluginChoice
    key: PluginChoice
    stages: tuple[PluginChoice, ...]
    core: Mapping[str, Any]
    #: facts about the resolved build the properties select on
    key_from_packet: bool = False
    carries_ipv4: bool = False
    features: frozenset = field(default=frozenset(), compare=False)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(st.name for st in self.stages)

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter, plugin parameters qualified by their owner."""
        out = dict(self.core)
        out.update({f"encap.{k}": v for k, v in self.encap.values.items()})
        out.update({f"key.{k}": v for k, v in self.key.values.items()})
        for st in self.stages:
            out.update({f"{st.name}.{k}": v for k, v in st.values.items()})
        return out

    @property
    def plugins(self) -> tuple[PluginChoice, ...]:
        return (self.encap, self.key, *self.stages)

    @property
    def distributions(self) -> frozenset[str]:
        return frozenset(p.distribution for p in self.plugins)

    @property
    def id(self) -> str:
        core = "-".join(str(self.core[name]) for name in VARIED_CORE_PARAMS)
        stages = "".join(f"+{st.label}" for st in self.stages)
        return f"{self.encap.label}-{self.key.label}{stages}-{core}"

    def __repr__(self) -> str:
        return f"Combo({self.id})"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis's failure reports
        printer.text(repr(self))

    def resolve(self) -> ResolvedSpec:
        return resolve_spec(self.encap.name, self.key.name, self.params, self.stage_names)


def plugin_choices(kind: str) -> list[PluginChoice]:
    """Every installed plugin of ``kind`` with each of its conformance parameter sets.
    Plugins that fail to load are left out here; the suite reports them
    (:func:`load_failures`)."""
    loaded, _failures = discovery.load_all(kind)
    return [PluginChoice(kind, lp.name, lp.distribution, i, dict(values))
            for lp in loaded for i, values in enumerate(lp.plugin.conformance_params())]


def load_failures() -> list[str]:
    """One line per installed plugin that does not load."""
    return [str(exc) for kind in discovery.NAMESPACES for exc in discovery.load_all(kind)[1]]


def _features(encap: PluginChoice, key: PluginChoice, stages: Sequence[PluginChoice],
              core: Mapping[str, Any]) -> frozenset:
    """Per slot (encap, key, stage, each varied core parameter): a fine feature (the
    plugin with its parameter set) and a coarse one (the plugin alone)."""
    slots = {"encap": encap, "key": key}
    slots.update({"stage": st for st in stages})
    out = set()
    for slot, choice in slots.items():
        out.add((slot, "fine", (choice.name, choice.index), choice.distribution))
        out.add((slot, "coarse", choice.name, choice.distribution))
    for name in VARIED_CORE_PARAMS:
        for grain in ("fine", "coarse"):
            out.add((name, grain, core[name], CORE_DISTRIBUTION))
    return frozenset(out)


def _testable(spec: ResolvedSpec) -> tuple[bool, bool, bool]:
    """(drivable by BPF_PROG_TEST_RUN, key read from the packet, IPv4 inner packets carried)."""
    from sfcframe.testkit.packets import ETH_P_IP

    encap, key = spec.encap.plugin, spec.key.plugin
    families = [t for t in encap.inner_ethertypes(spec.encap_params)
                if t in key.inner_ethertypes(spec.key_params)]
    drivable = bool(families) and key.test_run_round_trip(spec.key_params)
    from_packet = any(key.reference_key(key.example_inner(spec.key_params, t), t,
                                        spec.key_params)[1] is not None for t in families)
    return drivable, from_packet, ETH_P_IP in encap.inner_ethertypes(spec.encap_params)


def valid_combos() -> list[Combo]:
    """Every combination of installed plugins (each parameter set), core variants and
    no or one stage that resolves and that the test runs can drive, in a fixed order."""
    encaps, keys = plugin_choices("encap"), plugin_choices("key")
    stage_sets = [()] + [(st,) for st in plugin_choices("stage")]
    out = []
    with discovery.cached():
        for encap, key, stages, core in itertools.product(encaps, keys, stage_sets,
                                                          core_variants()):
            combo = Combo(encap, key, stages, core)
            try:
                spec = combo.resolve()
            except ParamError:
                continue  # not a valid combination
            drivable, from_packet, ipv4 = _testable(spec)
            if drivable:
                out.append(Combo(encap, key, stages, core, from_packet, ipv4,
                                 _features(encap, key, stages, core)))
    return out


def _pairs(combo: Combo, wanted: frozenset[str] | None) -> set:
    """Pairs of (fine feature of one slot, coarse feature of another) of a combo,
    those touching a plugin of the ``wanted`` distributions (None: all)."""
    fine = [f for f in combo.features if f[1] == "fine"]
    coarse = [f for f in combo.features if f[1] == "coarse"]
    return {(a[:3], b[:3]) for a in fine for b in coarse
            if a[0] != b[0] and (wanted is None or a[3] in wanted or b[3] in wanted)}


def representative(combos: Sequence[Combo], wanted: Iterable[str] | None = None) -> list[Combo]:
    """A subset of ``combos`` covering every pair their whole set covers: each
    parameter set of each plugin meets each other plugin, hook and cache kind (and
    each hook each cache kind) at least once; only pairs touching a plugin of the
    ``wanted`` distributions count. Greedy: the combination covering most pairs not
    yet covered first, ties in the given order; deterministic."""
    wanted = None if wanted is None else frozenset(wanted)
    pairs = [_pairs(c, wanted) for c in combos]
    todo = set().union(*pairs) if pairs else set()
    chosen: list[int] = []
    while todo:
        best = max(range(len(combos)), key=lambda i: (len(pairs[i] & todo), -i))
        chosen.append(best)
        todo -= pairs[best]
    return [combos[i] for i in sorted(chosen)]


def suite_combos(distribution: str | None = None, also: Sequence[str] = ()) -> list[Combo]:
    """The combinations a suite runs: with ``distribution``, those made of its plugins
    and the built-ins (plus ``also``'s), with at least one of its own; representative."""
    combos = valid_combos()
    if distribution is None:
        return representative(combos)
    allowed = {distribution, CORE_DISTRIBUTION, *also}
    mine = [c for c in combos if c.distributions <= allowed
            and (distribution in c.distributions or distribution == CORE_DISTRIBUTION)]
    return representative(mine, {distribution})
