"""The conformance kit itself: which builds it picks, and that it passes a correct
third-party plugin and fails broken ones (throw-away distributions in a temporary
directory, each tested by a suite of one line, in a pytest of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.kitplugins import write_hopcount, write_offbyone
from sfcframe.spec import CORE_PARAMS
from sfcframe.testkit.conformance.combos import (_pairs, core_variants, representative,
                                                 suite_combos, valid_combos)


# ---- which builds ------------------------------------------------------------
def test_core_variants_are_every_declared_hook_and_cache_kind():
    declared = {p.name: set(p.choices) - {"auto"} for p in CORE_PARAMS}
    variants = core_variants()
    assert {v["ingress"] for v in variants} == declared["ingress"] == {"xdp", "tc"}
    assert {v["cache"] for v in variants} == declared["cache"]
    assert len(variants) == len(declared["ingress"]) * len(declared["cache"])


def test_only_valid_combinations_are_kept():
    combos = valid_combos()
    assert combos
    for combo in combos:
        combo.resolve()  # raises ParamError for a combination the core refuses
    assert not [c for c in combos if c.key.name == "tcpip" and c.core["cache"] == "ring"]
    assert not [c for c in combos if c.stages and c.encap.name == "mpls"]  # no carrier
    assert not [c for c in combos if c.key.name == "metadata" and c.key.values.get("carrier")
                == "data_meta"], "a carrier BPF_PROG_TEST_RUN cannot hand over"


def test_the_representative_set_covers_every_pair_the_whole_set_does():
    combos = valid_combos()
    chosen = representative(combos)
    assert len(chosen) < len(combos) / 2
    every = set().union(*(_pairs(c, None) for c in combos))
    assert set().union(*(_pairs(c, None) for c in chosen)) == every
    # e.g. every parameter set of every built-in meets both hooks and both keys
    for combo in combos:
        for other in ("xdp", "tc"):
            assert any(c.encap == combo.encap and c.core["ingress"] == other for c in chosen)


def test_a_distributions_suite_keeps_to_its_plugins_and_the_builtins():
    builtin = suite_combos("sfcframe")
    assert builtin and all(c.distributions == {"sfcframe"} for c in builtin)
    assert {c.encap.name for c in builtin} == {"mpls", "nsh", "srv6"}
    assert {c.key.values.get("family") for c in builtin if c.key.name == "tcpip"} == {
        "ipv4", "ipv6", "any"}
    exptag = suite_combos("sfcframe-exptag")
    assert exptag and all(c.encap.name == "exptag" and not c.stages for c in exptag)
    ioam = suite_combos("sfcframe-ioam")
    assert ioam and all(c.stage_names == ("ioam",) for c in ioam)
    assert {c.encap.name for c in ioam} == {"nsh", "srv6"}
    assert suite_combos("sfcframe-not-installed") == []


# ---- the kit on throw-away distributions ---------------------------------------
#: a failure is reported as found: shrinking it would re-run the kernel for a minute
NO_SHRINKING = ("from hypothesis import Phase, settings\n"
                "settings.register_profile('found', phases=[Phase.explicit, Phase.generate])\n"
                "settings.load_profile('found')\n")
ONE_LINE = ("from sfcframe.testkit.conformance import conformance_suite\n"
            "TestConformance = conformance_suite({dist!r})\n")


def run_suite(root: Path, dist: str, *args: str, scale: float = 1) -> subprocess.CompletedProcess:
    """pytest on a test file holding the one line for ``dist``, with ``root`` (the
    throw-away distributions) on PYTHONPATH, from a directory outside the checkout;
    ``scale``: SFCFRAME_CONFORMANCE_SCALE, the examples' multiplier."""
    tests = root / "tests"
    tests.mkdir()
    (tests / "test_kit.py").write_text(ONE_LINE.format(dist=dist))
    (tests / "conftest.py").write_text(NO_SHRINKING)
    env = {**os.environ, "SFCFRAME_CONFORMANCE_SCALE": str(scale),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-rf", str(tests), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=1200)


@pytest.mark.kernel
@pytest.mark.slow
def test_a_correct_third_party_stage_passes_with_one_line(kernel_ready, tmp_path):
    """Every property on every build the stage rides; a quarter of the examples (the
    builds, every truncation and the properties are all there) to keep the time down."""
    proc = run_suite(tmp_path, write_hopcount(tmp_path, step=1), scale=0.25)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout[-2000:]


@pytest.mark.kernel
@pytest.mark.parametrize("write", [lambda root: write_hopcount(root, step=2), write_offbyone],
                         ids=["stage-bumps-by-two", "encap-update-rule-off-by-one"])
def test_the_kit_fails_a_plugin_whose_c_is_off_by_one(kernel_ready, tmp_path, write):
    proc = run_suite(tmp_path, write(tmp_path), "-x")
    assert proc.returncode == 1, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "1 failed" in proc.stdout, proc.stdout[-3000:]
    assert "egress output differs (restored)" in proc.stdout, proc.stdout[-6000:]
