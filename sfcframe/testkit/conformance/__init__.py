"""The conformance kit: sfcframe's generic properties, run against the real kernel for
every installed encapsulation, key and stage.

One line in a plugin distribution's tests runs it::

    from sfcframe.testkit.conformance import conformance_suite

    TestConformance = conformance_suite("sfcframe-exptag")  # your distribution's name

pytest collects ``TestConformance``; the fixtures come from sfcframe's pytest plugin
(``kernel_ready``, ``proxy_factory``, ``harness_factory``), installed with sfcframe.
Run it as root: the kernel properties fail, never skip, without BPF.

**Which builds** (:mod:`~sfcframe.testkit.conformance.combos`): every installed plugin
with each of its parameter sets (``conformance_params()``, default ``[{}]``), combined
with every other plugin, stage (none or one), ingress hook and cache kind the core
declares; combinations ``resolve_spec`` refuses are not valid and left out. Of those,
a representative set runs: every parameter set of every plugin meets every other
plugin, hook and cache kind at least once. ``conformance_suite(dist)`` keeps the
combinations made of ``dist``'s plugins and the built-ins (and of ``also``'s), with at
least one of ``dist``'s, and counts only pairs touching ``dist``;
``conformance_suite()`` takes everything installed.

**What each build must do** (the harness checks every program run against the
oracle: verdict, exact output frame, exactly one counter, the cache as predicted):

- round trips (:mod:`.roundtrip`): any valid header with any stage data, any inner
  packet of each family, through a function that forwards, routes, changes the length
  or NATs (keys that survive NAT): the exact header back (update rule, fix-up, the
  stages' edits with their loose fields in range, their counters) and the exact inner
  packet; two packets of one flow each get their own header;
- edges (:mod:`.edges`): every truncation at ingress and egress, lenient and strict;
  foreign ethertypes untouched; plain traffic tracked and passed; IPv4/TCP variants and
  non-TCP inner packets as the key says; a duplicate key (keys read from the packet)
  a counted drop; an egress miss passed or dropped per ``strict``;
- counters (:mod:`.counting`): after a mixed batch, each direction's counters sum to the
  frames it ran;
- determinism (:mod:`.determinism`): the rendered C is the same bytes in processes
  with different ``PYTHONHASHSEED`` values.

A plugin's tests then hold only what is specific to it (its reference against its
specification, its outcomes, its parameters).
"""

from __future__ import annotations

import re
from typing import Sequence

from sfcframe.testkit.conformance.combos import Combo, load_failures, suite_combos
from sfcframe.testkit.conformance.counting import CountingProperties
from sfcframe.testkit.conformance.determinism import DeterminismProperties
from sfcframe.testkit.conformance.edges import EdgeProperties
from sfcframe.testkit.conformance.roundtrip import RoundTripProperties
from sfcframe.testkit.conformance.select import accepts

__all__ = ["conformance_suite", "Combo"]


class _Suite:
    """What every generated suite has: its combos, their parametrization, a harness."""

    combos: list[Combo] = []
    distribution: str | None = None
    failures: list[str] = []

    def pytest_generate_tests(self, metafunc):
        if "combo" in metafunc.fixturenames:
            combos = [c for c in self.combos if accepts(metafunc.function, c)]
            metafunc.parametrize("combo", combos, ids=[c.id for c in combos])

    def harness(self, harness_factory, combo: Combo, strict: bool = False):
        return harness_factory(combo.encap.name, combo.key.name, strict=strict,
                               stages=combo.stage_names, **combo.params)

    def test_the_suite_has_builds_and_its_plugins_load(self):
        assert not self.failures, "plugins that do not load:\n" + "\n".join(self.failures)
        assert self.combos, (
            f"no valid build involves a plugin of {self.distribution!r}: is the "
            "distribution installed, and do its conformance_params() resolve?")


def conformance_suite(distribution: str | None = None, *, also: Sequence[str] = ()) -> type:
    """A pytest test class running the kit on ``distribution``'s plugins (None: every
    installed plugin); ``also``: other distributions whose plugins may complete a
    build (e.g. the encapsulation offering the carrier a stage rides)."""
    failures = load_failures()
    if distribution is not None:  # "... from <distribution> failed to load: ..."
        named = re.compile(rf"from {re.escape(distribution)}(?![\w.-])")
        failures = [f for f in failures if named.search(f)]
    return type("TestConformance", (_Suite, RoundTripProperties, EdgeProperties,
                                    CountingProperties, DeterminismProperties), {
        "combos": suite_combos(distribution, also),
        "distribution": distribution,
        "failures": failures,
    })
