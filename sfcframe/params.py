"""Declared, validated parameters of plugins and of the core.

Nothing user-supplied reaches the generated C before it went through
:meth:`Param.coerce`: integers are range-checked, choices are matched
against a fixed list, booleans are parsed from a small set of spellings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from sfcframe.errors import ParamError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is ``int``, ``bool``, ``choice``, ``ipv6list``
    (1..``max`` IPv6 addresses separated by commas, kept in their canonical
    compressed form, e.g. SRv6 SIDs) or ``text`` (a string the owner parses and
    validates itself, e.g. the core's static_header). ``quiet``: a spec's
    one-line description (and so the banner of the generated C) names the
    parameter only when it is not at its default, so that adding a parameter
    to a plugin leaves existing builds byte-identical."""

    name: str
    kind: str
    default: Any
    help: str
    min: int | None = None
    max: int | None = None
    choices: Sequence[str] = field(default_factory=tuple)
    quiet: bool = False

    def describe_range(self) -> str:
        if self.kind == "int":
            return f"{self.min}..{self.max}"
        if self.kind == "bool":
            return "true|false"
        if self.kind == "text":
            return "text"
        if self.kind == "ipv6list":
            return f"1..{self.max} IPv6 addresses, comma-separated"
        return "|".join(self.choices)

    def coerce(self, raw: Any, owner: str) -> Any:
        where = f"{owner}: parameter {self.name}"
        if self.kind == "int":
            if isinstance(raw, bool):
                raise ParamError(f"{where}: expected an integer, got {raw!r}")
            try:
                value = int(str(raw), 0) if not isinstance(raw, int) else raw
            except ValueError:
                raise ParamError(f"{where}: expected an integer, got {raw!r}") from None
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                raise ParamError(f"{where}={value} is outside {self.describe_range()}")
            return value
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ParamError(f"{where}: expected true or false, got {raw!r}")
        if self.kind == "choice":
            text = _spelled(raw)
            if text not in self.choices:
                raise ParamError(f"{where}={text!r} is not one of {self.describe_range()}")
            return text
        if self.kind == "text":
            if isinstance(raw, (dict, list, tuple)):
                raise ParamError(f"{where}: expected text, got {raw!r}")
            return _text_value(raw)
        if self.kind == "ipv6list":
            return _ipv6_list(raw, self.max or 1, where)
        raise ParamError(f"{where}: unknown parameter kind {self.kind!r}")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "range": self.describe_range(),
            "help": self.help,
        }
        return out


def _spelled(raw: Any) -> str:
    """A value as its parameter text (bools as true/false, as a flag or TOML gives them)."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _text_value(raw: Any) -> str:
    return _spelled(raw).strip()


def _ipv6_list(raw: Any, most: int, where: str) -> str:
    import ipaddress

    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    parts = [str(p).strip() for p in items]
    if not parts or any(not p for p in parts):
        raise ParamError(f"{where}: expected IPv6 addresses separated by commas, got {raw!r}")
    if len(parts) > most:
        raise ParamError(f"{where}: {len(parts)} addresses, at most {most}")
    canonical = []
    for part in parts:
        try:
            canonical.append(str(ipaddress.IPv6Address(part)))
        except ValueError:
            raise ParamError(f"{where}: {part!r} is not an IPv6 address") from None
    if len(set(canonical)) != len(canonical):
        raise ParamError(f"{where}: an address is listed twice in {raw!r}")
    return ",".join(canonical)


def resolve(
    declared: Sequence[Param], given: Mapping[str, Any], owner: str
) -> dict[str, Any]:
    """Defaults overlaid with ``given``, every value validated."""
    by_name = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise ParamError(f"{owner}: unknown parameter {unknown[0]!r} (known: {known})")
    values = {}
    for p in declared:
        values[p.name] = p.coerce(given[p.name], owner) if p.name in given else p.default
    return values
