"""Parameters stay typed from the command line to the state record and back (issue 14):
an int given as ``--cache-size`` is an int in the request, the spec, the JSON record
and the spec the runtime resolves from that record; nothing is patched as text."""

from __future__ import annotations

import json

import pytest

from sfcframe.cli import build_parser
from sfcframe.runtime import state
from sfcframe.runtime.config import build_request
from sfcframe.runtime.errors import InstanceError
from sfcframe.runtime.sizing import MAX_CACHE, recommend
from sfcframe.spec import resolve_spec, spec_from_dict
from sfcframe.testkit.conformance.combos import valid_combos


@pytest.fixture
def state_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("SFCFRAME_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SFCFRAME_PIN_ROOT", str(tmp_path / "pins"))
    return tmp_path


def _record(name: str, spec, params) -> state.Record:
    return state.Record(
        name=name, netns=None, spec=spec.as_dict(), describe=spec.describe(),
        params=dict(params), ingress_outcomes=[], egress_outcomes=[], extra_counters={},
        default_strict=bool(spec.core["strict"]), xdp_mode_requested="auto",
        pin_dir=str(state.pin_dir(name)))


def test_cache_size_stays_an_int_from_the_command_line_to_the_record_and_back(state_dirs):
    args = build_parser().parse_args(["up", "--name", "typed", "--encap", "mpls", "--key", "tcpip",
                                 "--iface", "eth1", "--cache-size", "4096", "--strict",
                                 "--param", "max_labels=10"])
    request = build_request(args)
    params = request.spec_params()
    assert params["cache_size"] == 4096 and params["strict"] is True
    spec = resolve_spec(request.encap, request.key, params)
    assert spec.core["cache_size"] == 4096 and spec.encap_params["max_labels"] == 10

    _record("typed", spec, params).save()
    text = json.loads(state.state_path("typed").read_text())
    assert text["spec"]["core"]["cache_size"] == 4096 and text["params"]["cache_size"] == 4096
    again = state.require("typed").resolved_spec()
    assert type(again.core["cache_size"]) is int and again.core["cache_size"] == 4096
    assert again.as_dict() == spec.as_dict() and again.describe() == spec.describe()
    assert "cache_size=4096" in again.describe()


def test_a_record_of_an_older_version_loads_or_is_refused_clearly(state_dirs):
    spec = resolve_spec("mpls", "tcpip", {"cache_size": "2048"})
    _record("older", spec, {"cache_size": "2048"}).save()  # params as text, as before
    assert state.require("older").resolved_spec().core["cache_size"] == 2048

    doc = spec.as_dict()
    doc["encap"]["params"]["gone"] = 1  # a parameter this version does not declare
    record = _record("gone", spec, {})
    record.spec = doc
    record.save()
    with pytest.raises(InstanceError, match="gone: its recorded build no longer resolves.*'gone'"):
        state.require("gone").resolved_spec()


def test_every_valid_build_resolves_again_from_its_document():
    specs = [combo.resolve() for combo in valid_combos()]
    specs.append(resolve_spec("mpls", "tcpip", {"mode": "static", "static_header": "100,200"}))
    for spec in specs:
        doc = json.loads(json.dumps(spec.as_dict()))
        again = spec_from_dict(doc)
        assert again.as_dict() == spec.as_dict() and again.describe() == spec.describe(), doc
        assert again.static_bytes == spec.static_bytes


def test_with_core_derives_the_description_and_checks_the_value():
    spec = resolve_spec("mpls", "tcpip", {"cache": "lru"})
    bigger = spec.with_core(cache_size=65536)
    assert bigger.core["cache_size"] == 65536 and spec.core["cache_size"] == 10000
    assert "cache_size=65536" in bigger.describe() and "cache_size=10000" in spec.describe()
    with pytest.raises(Exception, match="outside"):
        spec.with_core(cache_size=MAX_CACHE + 1)


def test_recommendation_describes_the_size_it_recommends():
    rec = recommend(3000, params={"cache": "lru", "cache_size": 16}, margin=1, cpus=1)
    expected = resolve_spec("mpls", "tcpip", {"cache": "lru"}).with_core(
        cache_size=rec.cache_size).describe()
    assert rec.describe == expected and f"cache_size={rec.cache_size}" in rec.describe
