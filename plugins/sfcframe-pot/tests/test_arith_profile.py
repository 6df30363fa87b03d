"""The arithmetic modulo 2^61 - 1 and the Shamir profiles, in Python: the C's
multiplication scheme against plain big-integer arithmetic over the whole input
range, and the scheme's promises (a complete path verifies; a missing node, a
wrong share or another packet's CML does not)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfcframe_pot import arith, profile
from sfcframe_pot.arith import P

U64 = st.integers(0, (1 << 64) - 1)
RESIDUE = st.integers(0, P - 1)
BELOW_2_61 = st.one_of(st.integers(0, (1 << 61) - 1),
                       st.sampled_from([0, 1, P - 1, P, (1 << 32) - 1, 1 << 32, (1 << 61) - 2]))


@settings(max_examples=2000)
@given(a=BELOW_2_61, b=BELOW_2_61)
def test_mulmod_from_32_bit_partial_products_equals_the_big_integer_product(a, b):
    assert arith.mulmod_parts(a, b) == a * b % P


@settings(max_examples=2000)
@given(x=U64)
def test_fold_reduces_every_64_bit_word(x):
    assert arith.fold(x) == x % P


@settings(max_examples=1000)
@given(cml=U64, rnd=U64, share=RESIDUE, lpc=RESIDUE)
def test_update_is_cml_plus_lpc_times_share_plus_rnd(cml, rnd, share, lpc):
    assert arith.update(cml, rnd, share, lpc) == (cml + lpc * (share + rnd)) % P


@pytest.mark.parametrize("nodes", [1, 2, 3, 5, 16])
@settings(max_examples=20, deadline=None)
@given(rnd=U64)
def test_a_packet_that_passed_every_node_verifies(nodes, rnd):
    prof = profile.generate(nodes)
    cml = 0
    for n in prof.nodes:
        cml = n.update(cml, rnd)
    assert prof.verifies(cml, rnd)


@settings(max_examples=50, deadline=None)
@given(rnd=U64, other=U64, data=st.data())
def test_skipped_node_wrong_share_or_replayed_cml_fail(rnd, other, data):
    prof = profile.generate(3)
    skipped = data.draw(st.integers(0, 2), label="skipped")
    cml = 0
    for i, n in enumerate(prof.nodes):
        if i != skipped:
            cml = n.update(cml, rnd)
    assert not prof.verifies(cml, rnd)

    wrong = profile.NodeShare(2, 0, (prof.nodes[1].share + 1) % P, prof.nodes[1].public,
                              prof.nodes[1].lpc)
    cml = prof.nodes[2].update(wrong.update(prof.nodes[0].update(0, rnd), rnd), rnd)
    assert not prof.verifies(cml, rnd)

    good = 0
    for n in prof.nodes:
        good = n.update(good, rnd)
    if other % P != rnd % P:  # another RND with the CML of this one
        assert not prof.verifies(good, other)


def test_lagrange_constants_sum_to_one_and_points_are_distinct():
    prof = profile.generate(8)
    assert sum(n.lpc for n in prof.nodes) % P == 1
    assert len({n.x for n in prof.nodes}) == 8 and all(n.x for n in prof.nodes)


def test_files_are_private_and_round_trip(tmp_path):
    prof = profile.generate(3, namespace=0x8FC0, index=1)
    written = profile.write(prof, tmp_path / "p")
    assert [p.name for p in written] == ["profile.json", "node-1.settings", "node-2.settings",
                                         "node-3.settings"]
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert profile.load(written[0]) == prof
    lines = written[2].read_text().splitlines()
    assert lines[0].startswith("#")
    assert dict(line.split("=") for line in lines[1:]) == {
        "pot.namespace": str(0x8FC0), "pot.share_1": str(prof.nodes[1].share),
        "pot.public_1": str(prof.nodes[1].public), "pot.lpc_1": str(prof.nodes[1].lpc)}
    assert str(prof.secret) not in written[2].read_text()


def test_a_tampered_profile_is_refused(tmp_path):
    prof = profile.generate(2)
    path = profile.write(prof, tmp_path)[0]
    doc = json.loads(path.read_text())
    doc["secret"] = (doc["secret"] + 1) % P
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="do not reconstruct"):
        profile.load(path)
    doc["prime"] = 2**31 - 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="2\\^61 - 1"):
        profile.load(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        profile.load(path)


def test_node_counts_out_of_range_are_refused():
    for n in (0, profile.MAX_NODES + 1):
        with pytest.raises(ValueError, match="nodes"):
            profile.generate(n)
