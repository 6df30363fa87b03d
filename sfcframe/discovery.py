"""Finding plugins through stevedore entry points.

Namespaces: ``sfcframe.encaps``, ``sfcframe.keys`` and ``sfcframe.stages``. Every failure becomes a
:class:`PluginError` naming the plugin and the distribution that provides it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterator

from stevedore import DriverManager, ExtensionManager
from stevedore.exception import NoMatches

from sfcframe.errors import PluginError
from sfcframe.plugin import CONTRACT_VERSION, EncapPlugin, KeyPlugin, StagePlugin

NAMESPACES = {"encap": "sfcframe.encaps", "key": "sfcframe.keys", "stage": "sfcframe.stages"}
CONTRACTS = {"encap": EncapPlugin, "key": KeyPlugin, "stage": StagePlugin}


@dataclass(frozen=True)
class LoadedPlugin:
    kind: str
    name: str
    distribution: str
    version: str
    plugin: Any  # EncapPlugin | KeyPlugin instance


def _distribution_of(namespace: str, name: str) -> tuple[str, str]:
    for ep in metadata.entry_points(group=namespace, name=name):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            return dist.metadata["Name"], dist.version
    return "unknown distribution", "?"


def _entry_point_names(namespace: str) -> list[str]:
    return sorted({ep.name for ep in metadata.entry_points(group=namespace)})


def _check(kind: str, name: str, obj: Any) -> Any:
    contract = CONTRACTS[kind]
    dist, _ = _distribution_of(NAMESPACES[kind], name)
    if not (isinstance(obj, type) and issubclass(obj, contract)):
        raise PluginError(
            f"{kind} plugin {name!r} (from {dist}) is not a {contract.__name__} subclass"
        )
    if obj.contract != CONTRACT_VERSION:
        raise PluginError(
            f"{kind} plugin {name!r} (from {dist}) implements plugin contract "
            f"{obj.contract}; this sfcframe needs contract {CONTRACT_VERSION} "
            "(bpf_templates/CONTRACT.md, 'Changes from contract 1')"
        )
    try:
        instance = obj()
    except TypeError as exc:
        raise PluginError(f"{kind} plugin {name!r} (from {dist}) is incomplete: {exc}") from exc
    instance.name = name
    return instance


#: plugins loaded inside a cached() block, by (kind, name); None outside
_loaded_once: dict[tuple[str, str], LoadedPlugin] | None = None


@contextmanager
def cached() -> Iterator[None]:
    """Inside the block, :func:`load` loads each plugin once and hands out the same
    LoadedPlugin after that (the conformance kit resolves a few hundred specs, and
    every load scans the installed distributions' entry points); outside, every
    call looks again."""
    global _loaded_once
    outer = _loaded_once
    _loaded_once = {} if outer is None else outer
    try:
        yield
    finally:
        _loaded_once = outer


def load(kind: str, name: str) -> LoadedPlugin:
    """Load one plugin by entry-point name."""
    if _loaded_once is not None and (kind, name) in _loaded_once:
        return _loaded_once[(kind, name)]
    loaded = _load(kind, name)
    if _loaded_once is not None:
        _loaded_once[(kind, name)] = loaded
    return loaded


def _load(kind: str, name: str) -> LoadedPlugin:
    namespace = NAMESPACES[kind]
    try:
        manager = DriverManager(namespace, name, invoke_on_load=False)
    except NoMatches:
        known = ", ".join(_entry_point_names(namespace)) or "none installed"
        raise PluginError(f"unknown {kind} plugin {name!r} (available: {known})") from None
    except PluginError:
        raise
    except Exception as exc:  # import errors of the plugin's module propagate here
        dist, _ = _distribution_of(namespace, name)
        raise PluginError(
            f"{kind} plugin {name!r} from {dist} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    instance = _check(kind, name, manager.driver)
    dist, version = _distribution_of(namespace, name)
    return LoadedPlugin(kind, name, dist, version, instance)


def load_all(kind: str) -> tuple[list[LoadedPlugin], list[PluginError]]:
    """Every plugin of one kind, plus one error per plugin that failed."""
    namespace = NAMESPACES[kind]
    failures: list[PluginError] = []

    def on_failure(_manager, entrypoint, exc) -> None:
        dist, _ = _distribution_of(namespace, entrypoint.name)
        failures.append(
            PluginError(
                f"{kind} plugin {entrypoint.name!r} from {dist} failed to load: "
                f"{type(exc).__name__}: {exc}"
            )
        )

    manager = ExtensionManager(
        namespace, invoke_on_load=False, on_load_failure_callback=on_failure
    )
    loaded = []
    for ext in sorted(manager, key=lambda e: e.name):
        try:
            instance = _check(kind, ext.name, ext.plugin)
        except PluginError as exc:
            failures.append(exc)
            continue
        dist, version = _distribution_of(namespace, ext.name)
        loaded.append(LoadedPlugin(kind, ext.name, dist, version, instance))
    return loaded, failures
