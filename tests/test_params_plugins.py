"""Parameter validation, routing and plugin discovery (pure Python)."""

from __future__ import annotations

import pytest

from sfcframe import discovery
from sfcframe.errors import ParamError, PluginError
from sfcframe.params import Param, resolve
from sfcframe.spec import resolve_spec


def test_int_param_range_and_spellings():
    p = Param("n", "int", 1, "n", 0, 16)
    assert p.coerce("0x10", "t") == 16 and p.coerce(3, "t") == 3
    for bad in ("17", "-1", "1.5", True):
        with pytest.raises(ParamError):
            p.coerce(bad, "t")


def test_bool_and_choice():
    assert Param("b", "bool", False, "b").coerce("Yes", "t") is True
    assert Param("b", "bool", False, "b").coerce("off", "t") is False
    with pytest.raises(ParamError, match="one of a|b"):
        Param("c", "choice", "a", "c", choices=("a", "b")).coerce("z", "t")


def test_resolve_fills_defaults_and_rejects_unknown():
    declared = (Param("a", "int", 5, "a", 0, 9),)
    assert resolve(declared, {}, "t") == {"a": 5}
    with pytest.raises(ParamError, match="unknown parameter 'b'"):
        resolve(declared, {"b": "1"}, "t")


def test_spec_routes_parameters_to_their_owner():
    spec = resolve_spec("mpls", "tcpip", {"pop": "0", "cache_size": "100", "mpls.max_labels": "4"})
    assert spec.encap_params == {"max_labels": 4, "pop": 0}
    assert spec.core["cache_size"] == 100 and spec.header_capacity == 16


def test_discovery_lists_builtins_in_sorted_order():
    encaps, failures = discovery.load_all("encap")
    names = [p.name for p in encaps]
    assert names == sorted(names) and {"mpls", "nsh"} <= set(names)
    assert not [f for f in failures if "sfcframe " in str(f)]


def test_unknown_plugin_lists_what_exists():
    with pytest.raises(PluginError, match="available: .*mpls"):
        discovery.load("encap", "geneve")
