"""A proxy with a metadata stage, operated as an operator would: ``up --stage``,
the stage's runtime settings through ``set`` (validated, written to its settings
map, never into the record or onto the terminal), its counters and histogram in
``stats``, and ``down``. Real attachments in a throw-away namespace."""

from __future__ import annotations

import json

import pytest
from fixtures.netns import sfc

from sfcframe.runtime import stage_settings, state

pytestmark = pytest.mark.kernel


def test_up_with_the_ioam_stage_set_its_settings_stats_and_down(bed):
    name = bed.instance()
    up = sfc("up", "--name", name, "--encap", "nsh", "--key", "tcpip", "--stage", "ioam",
             "--param", "max_ioam_bytes=64", "--iface", "va", "--netns", bed.ns,
             "--ingress", "tc")
    assert up.returncode == 0, up.stderr
    record = state.require(name)
    assert record.stages == ["ioam"] and "stage_ioam_counters" in record.extra_counters
    (_, _, params), = stage_settings.declared(record.spec).values()
    path = record.maps[stage_settings.map_name("ioam")]
    now = stage_settings.read(path, params)
    assert now["node_id"] == 0xFFFFFF and now["clock_offset_ns"] > 10**18  # set at up

    done = sfc("set", name, "ioam.node_id=4660", "ioam.egress_if=0x22")
    assert done.returncode == 0, done.stderr
    assert "ioam.node_id" in done.stdout and "4660" not in done.stdout  # names, not values
    now = stage_settings.read(path, params)
    assert (now["node_id"], now["egress_if"]) == (4660, 0x22)
    assert "4660" not in state.state_path(name).read_text()

    for bad, words in (("ioam.node_id=16777216", "expected an integer in 0..16777215"), ("ioam.colour=3", "no setting"),
                       ("pot.secret=1", "no stage 'pot'")):
        proc = sfc("set", name, bad)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert "16777216" not in proc.stderr  # a rejected value is not echoed (secrets)
    assert stage_settings.read(path, params)["node_id"] == 4660  # nothing written
    assert sfc("set", name, "ioam.node_id=default").returncode == 0
    assert stage_settings.read(path, params)["node_id"] == 0xFFFFFF

    stats = json.loads(sfc("stats", name, "--json").stdout)
    assert stats["stages"] == ["ioam"]
    assert set(stats["extra_counters"]["stage_ioam_counters"]) == {
        "filled", "overflow", "other_namespace", "malformed", "no_trace"}
    hist = stats["histograms"]["ioam_dwell_ns"]
    assert hist["count"] == 0 and hist["p50"] is None and len(hist["buckets"]) == 64
    assert "ioam_dwell_ns: no samples yet" in sfc("stats", name).stdout

    assert sfc("down", name).returncode == 0
    assert state.load(name) is None


def test_a_stage_the_encapsulation_cannot_carry_is_refused_before_anything_changes(bed):
    name = bed.instance()
    proc = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--stage", "ioam",
               "--iface", "va", "--netns", bed.ns)
    assert proc.returncode == 2
    assert "stage ioam rides ioam; encap mpls offers none" in proc.stderr
    assert state.load(name) is None and bed.tc("va") == []
