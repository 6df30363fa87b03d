"""Per-packet outcomes: one counter each, and the verdict each one implies.

Every packet a program sees ends in exactly one outcome, so the counters of
one direction add up to the packets that direction saw. ``policy`` says what
happens to the packet: ``pass`` and ``drop`` always, ``strict`` drops in
strict mode and passes the packet unmodified otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    name: str
    policy: str  # "pass" | "drop" | "strict"
    help: str
    source: str = "core"

    def __post_init__(self) -> None:
        if self.policy not in ("pass", "drop", "strict"):
            raise ValueError(f"outcome {self.name}: bad policy {self.policy!r}")


INGRESS = (
    Outcome("ignored", "pass", "not encapsulated and not tracked (ARP, non-IP, outside the key)"),
    Outcome("plain", "pass", "arrived without encapsulation; marked so egress passes it"),
    Outcome("malformed", "strict", "encapsulation or inner headers truncated or invalid"),
    Outcome("too_deep", "strict", "more encapsulation than the build's maximum"),
    Outcome("unsupported_inner", "strict", "inner protocol the encapsulation does not handle"),
    Outcome("no_key", "strict", "inner packet outside the key (e.g. non-TCP, non-first fragment)"),
    Outcome("collision", "drop", "an in-flight packet already holds this key"),
    Outcome("error", "drop", "a kernel helper failed while stripping"),
    Outcome("cached", "pass", "encapsulation cached and stripped"),
)

EGRESS = (
    Outcome("ignored", "pass", "not a packet the key covers (non-IP, outside the key)"),
    Outcome("plain", "pass", "arrived plain at ingress; passed unmodified"),
    Outcome("malformed", "strict", "inner headers truncated or invalid"),
    Outcome("not_cached", "strict", "no cache entry (evicted, never cached, or key rewritten)"),
    Outcome("restored", "pass", "encapsulation restored"),
    Outcome("too_big", "drop", "restored frame would exceed the device MTU"),
    Outcome("error", "drop", "a kernel helper failed while restoring"),
)


#: ingress=tc, mode=cache: a GSO skb stands for several packets, one header
#: cannot be cached for all of them (see README, "TC ingress")
GSO = Outcome(
    "gso", "strict", "a GSO skb (several packets in one): one header cannot be cached for "
    "all of them; passed unmodified"
)

#: mode=static: no cache, no key
STATIC_INGRESS = (
    Outcome("ignored", "pass", "not encapsulated and not IPv4/IPv6 (ARP, ...)"),
    Outcome("plain", "pass", "IPv4/IPv6 that arrived without encapsulation"),
    Outcome("malformed", "strict", "encapsulation truncated or invalid"),
    Outcome("too_deep", "strict", "more encapsulation than the build's maximum"),
    Outcome("unsupported_inner", "strict", "inner protocol the encapsulation does not handle"),
    Outcome("error", "drop", "a kernel helper failed while stripping"),
    Outcome("stripped", "pass", "encapsulation stripped"),
)

STATIC_EGRESS = (
    Outcome("ignored", "pass", "not IPv4/IPv6: nothing pushed"),
    Outcome("not_configured", "pass", "no static header configured: passed unmodified"),
    Outcome("pushed", "pass", "the configured header pushed"),
    Outcome("too_big", "drop", "the grown frame would exceed the device MTU"),
    Outcome("error", "drop", "a kernel helper failed while pushing"),
)


def c_name(direction: str, outcome: Outcome) -> str:
    prefix = "SFC_IN_" if direction == "ingress" else "SFC_EG_"
    return prefix + outcome.name.upper()


def compose(core: tuple[Outcome, ...], extra: list[Outcome]) -> list[Outcome]:
    """Core outcomes first (fixed indices), then plugin outcomes sorted by name."""
    names = {o.name for o in core}
    for o in extra:
        if o.name in names:
            raise ValueError(f"plugin outcome {o.name!r} clashes with a core outcome")
    return list(core) + sorted(extra, key=lambda o: o.name)
