"""The core parameters as command-line flags and TOML keys, from their one declaration.

Every entry of :data:`sfcframe.spec.CORE_PARAMS` is a flag of the same name
(``cache_size`` -> ``--cache-size``) on ``build``, ``up`` and ``demo``: an int
takes a number in its range, a bool is ``--strict`` / ``--no-strict``, a choice
takes one of its choices, text takes a string. The same declaration checks the
top-level keys of an ``up --config`` TOML file (:func:`check_toml`). Adding a
core parameter adds its flag on every command and its TOML key.
"""

from __future__ import annotations

import argparse
from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.params import Param


def _core_params() -> tuple[Param, ...]:
    from sfcframe.spec import CORE_PARAMS

    return CORE_PARAMS




def name_value(text: str) -> tuple[str, str]:
    """argparse type of ``--param NAME=VALUE``: the stripped (name, value) pair."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def add_param_flag(parser, help: str) -> None:
    """The repeatable ``--param NAME=VALUE`` flag; ``args.param`` is a list of pairs."""
    parser.add_argument("--param", action="append", type=name_value, default=[],
                        metavar="NAME=VALUE", help=help)


def add_core_flags(parser: argparse.ArgumentParser,
                   helps: Mapping[str, str] | None = None) -> None:
    """One flag per core parameter, in a group of its own; ``dest`` is the
    parameter's name and the default None (not given). ``helps`` replaces the
    help of some (e.g. the demo's own default for ``ingress``)."""
    group = parser.add_argument_group(
        "core parameters",
        "every build's parameters (sfcframe plugins lists them; --param NAME=VALUE sets "
        "them too)")
    for param in _core_params():
        text = (helps or {}).get(param.name) or f"{param.help} (default {_shown(param)})"
        kwargs: dict[str, Any] = {"dest": param.name, "default": None, "help": text}
        if param.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif param.kind == "int":
            kwargs["type"] = int  # the range is the spec's to check: one line, exit 2
            kwargs["metavar"] = "N"
        elif param.kind == "choice":
            kwargs["choices"] = tuple(param.choices)
        else:
            kwargs["metavar"] = param.name.upper()
        group.add_argument(flag_name(param.name), **kwargs)


def _shown(param: Param) -> str:
    if param.kind == "bool":
        return "true" if param.default else "false"
    return str(param.default) if param.default != "" else "empty"


def text(value: Any) -> str:
    """A flag's or TOML value as a parameter's text (bools as true/false): how two
    spellings of one setting are compared."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The core parameters given as flags, typed as the flags parsed them
    ({name: int, bool or str}); :func:`sfcframe.spec.resolve_spec` validates them."""
    out = {}
    for param in _core_params():
        value = getattr(args, param.name, None)
        if value is not None:
            out[param.name] = value
    return out


def names() -> tuple[str, ...]:
    return tuple(p.name for p in _core_params())


_TOML_TYPES = {"int": (int, "an integer"), "bool": (bool, "true or false"),
               "choice": (str, "a string"), "text": (str, "a string")}


def check_toml(data: Mapping[str, Any], where: str) -> None:
    """Each core parameter among ``data``'s keys has the TOML type and value its
    declaration allows; ParamError naming ``where`` otherwise."""
    for param in _core_params():
        if param.name not in data:
            continue
        value = data[param.name]
        kind, what = _TOML_TYPES.get(param.kind, (str, "a string"))
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ParamError(f"{where}: {param.name} must be {what}, got {value!r}")
        try:
            param.coerce(value, "core")
        except ParamError as exc:
            raise ParamError(f"{where}: {str(exc).removeprefix('core: ')}") from None



def merge_once(params: dict[str, Any], top: Mapping[str, Any], where: str, how) -> None:
    """Put ``top`` (settings named by a key or flag) into ``params``; a name
    that ``params`` holds with another value (plain or ``core.``) is refused:
    a setting given twice is an error, never resolved silently."""
    for name, value in top.items():
        for key in (name, f"core.{name}"):
            if key in params and _folded(params[key]) != _folded(value):
                raise ParamError(
                    f"{where}: {how(name)} = {value!r} and {key} = {params[key]!r} disagree; "
                    "give it once")
            params.pop(key, None)
        params[name] = value


def _folded(value: Any) -> str:
    return text(value).strip().lower()


def merge(params: Mapping[str, Any], args: argparse.Namespace, command: str) -> dict[str, Any]:
    """``--param`` pairs with the core flags given merged in (:func:`merge_once`),
    each value as given (a flag's int stays an int)."""
    out = dict(params)
    merge_once(out, given(args), command, lambda n: flag_name(n))
    return out


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")
