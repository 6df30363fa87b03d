"""The ``up`` request: command-line flags over an optional TOML file.

A config file holds the same things as the flags::

    name = "vnf1"
    encap = "mpls"
    key = "tcpip"
    interfaces = ["eth1", "eth2"]
    netns = "vnf"            # optional
    cache_size = 65536       # optional
    strict = false           # optional
    xdp_mode = "auto"        # native | generic | auto
    keep_offloads = false    # optional: refuse instead of switching GRO/LRO off
    ingress = "xdp"          # optional: xdp | tc (core parameter ingress)
    mode = "cache"           # optional: cache | static (core parameter mode)
    static_header = "100,200"  # optional, mode=static: the header egress pushes
    stages = ["ioam"]        # optional: metadata stages, in the order they run

    [params]                 # plugin and core parameters, as --param NAME=VALUE
    pop = 1
    max_labels = 10

A flag given on the command line wins over the file; ``--param`` pairs are
merged into ``[params]`` name by name and ``--iface`` replaces ``interfaces``.
A setting given twice at the same level with different values is refused
rather than resolved silently: a top-level key and the same name in
``[params]`` (``cache_size``, ``strict``, ``ingress``, ``mode``,
``static_header``), or a flag and the same name in ``--param``.
Every core parameter (``sfcframe.spec.CORE_PARAMS``: ``cache_size``,
``strict``, ``track_plain``, ``cache``, ``ingress``, ``mode``,
``static_header``) is a top-level key, checked against its declaration, a
``[params]`` entry, ``--param NAME=VALUE`` and a flag of its own
(:mod:`sfcframe.coreflags`); in-process callers set
``UpRequest(params={"ingress": "tc"})`` or ``UpRequest(ingress="tc")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from sfcframe import coreflags
from sfcframe.errors import ParamError
from sfcframe.runtime.errors import ConfigError
from sfcframe.runtime.state import check_name

XDP_MODES = ("native", "generic", "auto")
#: every core parameter is a top-level key and a flag too (sfcframe.coreflags)
DOUBLED = coreflags.names()
KNOWN_KEYS = {
    "name", "encap", "key", "interfaces", "netns", "xdp_mode", "keep_offloads", "params",
    "stages", *DOUBLED,
}
#: core parameters that are also UpRequest fields
CORE_FIELDS = ("ingress", "mode", "static_header")


@dataclass
class UpRequest:
    name: str
    encap: str
    key: str
    interfaces: list[str]
    netns: str | None = None
    #: plugin and core parameters, typed as given (TOML and flags: ints and bools
    #: as such; --param: text); :func:`sfcframe.spec.resolve_spec` validates them
    params: dict[str, Any] = field(default_factory=dict)
    xdp_mode: str = "auto"
    keep_offloads: bool = False
    #: core parameters, the same as params["ingress"] etc. (None: as in params)
    ingress: str | None = None
    mode: str | None = None
    static_header: str | None = None
    #: metadata stages, in the order they run
    stages: list[str] = field(default_factory=list)

    def spec_params(self) -> dict[str, Any]:
        """``params`` with the core fields merged in, typed as given; a field and
        a param that disagree are an error."""
        params = dict(self.params)
        for name in CORE_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            given = params.get(name, params.get(f"core.{name}"))
            if given is not None and coreflags.text(given) != coreflags.text(value):
                raise ConfigError(
                    f"up: {name}={value!r} and params {name}={given!r} disagree"
                )
            params.pop(f"core.{name}", None)
            params[name] = value
        return params

    @property
    def ingress_hook(self) -> str:
        params = self.spec_params()
        return coreflags.text(params.get("ingress", params.get("core.ingress", "xdp")))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (TOML must be): byte {exc.start}") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: arrays or tables nested too deeply") from None
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key {unknown[0]!r} "
            f"(known: {', '.join(sorted(KNOWN_KEYS))})"
        )
    types = {
        "name": str, "encap": str, "key": str, "netns": str, "xdp_mode": str,
        "keep_offloads": bool, "interfaces": list, "params": dict,
    }
    for name, kind in types.items():
        if name in data and not isinstance(data[name], kind):
            raise ConfigError(f"config file {path}: {name} must be a {kind.__name__}")
    try:  # the core parameters: their one declaration (type, range, choices)
        coreflags.check_toml(data, f"config file {path}")
    except ParamError as exc:
        raise ConfigError(str(exc)) from None
    if "interfaces" in data and not all(isinstance(i, str) for i in data["interfaces"]):
        raise ConfigError(f"config file {path}: interfaces must be a list of names")
    for pname, value in data.get("params", {}).items():
        if isinstance(value, (dict, list)):
            raise ConfigError(f"config file {path}: params.{pname} must be a single value")
    return data


def _merge_once(params: dict[str, Any], top: dict[str, Any], where: str, how) -> None:
    try:
        coreflags.merge_once(params, top, where, how)
    except ParamError as exc:
        raise ConfigError(str(exc)) from None


def build_request(args) -> UpRequest:
    """Merge ``args`` (argparse namespace of ``up``) over ``args.config``."""
    data: dict[str, Any] = read_toml(Path(args.config)) if args.config else {}
    params = {str(k): v for k, v in data.get("params", {}).items()}
    _merge_once(params, {n: data[n] for n in DOUBLED if n in data},
                f"config file {args.config}", lambda n: n)
    flags = coreflags.given(args)
    given = dict(args.param)
    _merge_once(given, flags, "up", lambda n: "--" + n.replace("_", "-"))
    for name in DOUBLED:  # the command line over the file, whichever spelling each used
        if name in given or f"core.{name}" in given:
            params.pop(name, None)
            params.pop(f"core.{name}", None)
    params.update(given)

    def pick(flag: str, key: str | None = None, default: Any = None) -> Any:
        value = getattr(args, flag)
        return value if value is not None else data.get(key or flag, default)

    source = f" (nor in {args.config})" if args.config else ""
    name, encap, key = pick("name"), pick("encap"), pick("key")
    interfaces = list(args.iface) if args.iface else list(data.get("interfaces", []))
    for what, value in (("--name", name), ("--encap", encap), ("--key", key)):
        if not value:
            raise ConfigError(f"up: {what} is required{source}")
    if not interfaces:
        raise ConfigError(f"up: at least one --iface is required{source}")
    duplicates = sorted({i for i in interfaces if interfaces.count(i) > 1})
    if duplicates:
        raise ConfigError(f"up: interface {duplicates[0]} given twice")
    xdp_mode = pick("xdp_mode", default="auto")
    if xdp_mode not in XDP_MODES:
        raise ConfigError(f"up: xdp_mode {xdp_mode!r}: use one of {', '.join(XDP_MODES)}")
    keep = args.keep_offloads or bool(data.get("keep_offloads", False))
    stages = list(getattr(args, "stage", None) or data.get("stages", []))
    if not all(isinstance(s, str) for s in stages):
        raise ConfigError(f"config file {args.config}: stages must be a list of stage names")
    return UpRequest(
        name=check_name(name),
        encap=encap,
        key=key,
        interfaces=interfaces,
        netns=pick("netns"),
        params=params,
        xdp_mode=xdp_mode,
        keep_offloads=keep,
        stages=stages,
    )
