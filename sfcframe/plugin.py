"""The two plugin contracts: encapsulations and key strategies.

A plugin is a Python class registered under an entry point
(``sfcframe.encaps`` or ``sfcframe.keys``). It declares its parameters, ships
a Jinja2 template of C macros (see ``bpf_templates/CONTRACT.md`` for the C
names each macro must define) and, for tests, a Python reference of the
transformation it performs plus hypothesis strategies for valid inputs.
"""

from __future__ import annotations

import abc
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.outcomes import Outcome
from sfcframe.params import Param


@dataclass(frozen=True)
class ProgramSpec:
    """One BPF program of a build: C function name, program type and hook."""

    function: str
    prog_type: str  # "xdp" | "sched_cls"
    hook: str  # "xdp" | "tc-ingress" | "tc-egress"
    source: str = "core"


@dataclass(frozen=True)
class EncapParse:
    """Reference result of parsing one frame's encapsulation (test oracle)."""

    outcome: str  # "ok" or an ingress outcome name
    strip_len: int = 0
    inner_ethertype: int = 0
    cached: bytes = b""


class _Plugin(abc.ABC):
    #: entry-point name; set by discovery, class default used by tests.
    name: str = ""
    #: one-line description shown by ``sfcframe plugins``.
    description: str = ""
    #: declared parameters.
    params: tuple[Param, ...] = ()
    #: template file (macros) in :meth:`template_dir`.
    template: str = ""

    @classmethod
    def template_dir(cls) -> Path:
        return Path(inspect.getfile(cls)).resolve().parent

    def validate(self, values: Mapping[str, Any]) -> None:
        """Cross-parameter checks; raise ParamError."""


class EncapPlugin(_Plugin):
    """An SFC encapsulation: how to recognise, cache, strip and restore it."""

    #: outer ethertype that marks a frame as carrying this encapsulation.
    ethertype: int = 0
    #: optional template (in :meth:`template_dir`) of the macros ``sfcframe demo``
    #: needs (``types``, ``build``, ``parse``: DEMO_HDR_MAX, demo_build(),
    #: demo_hdr_len(); see ``bpf_templates/demo.c.j2``); None: no demo.
    demo_template: str | None = None

    @abc.abstractmethod
    def header_capacity(self, values: Mapping[str, Any]) -> int:
        """Largest number of header bytes a cache entry must hold."""

    @abc.abstractmethod
    def max_strip(self, values: Mapping[str, Any]) -> int:
        """Most bytes ingress removes after the Ethernet header."""

    def egress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        """Extra egress outcomes the encapsulation's update rule may produce."""
        return []

    def static_header(self, text: str, values: Mapping[str, Any]) -> bytes:
        """The header a static proxy (core ``mode=static``) pushes, from the
        user's ``text``: the wire bytes egress writes after the Ethernet header
        (what :meth:`reference_restore` would return). The default accepts hex
        (``"00 06 41 40"``, ``"0x00064140"``, ``"00:06:41:40"``); a plugin may
        accept a friendlier notation. Raise ParamError for bad text. The core
        checks the length against the entry's capacity."""
        cleaned = text.strip().lower()
        if cleaned.startswith("0x"):
            cleaned = cleaned[2:]
        for sep in (" ", ":", "-", "_"):
            cleaned = cleaned.replace(sep, "")
        try:
            return bytes.fromhex(cleaned)
        except ValueError:
            raise ParamError(
                f"encap {self.name}: static header {text!r} is not hex bytes "
                "(e.g. 00064140)"
            ) from None

    # ---- test oracle -------------------------------------------------
    @abc.abstractmethod
    def reference_ingress(self, l2_payload: bytes, values: Mapping[str, Any]) -> EncapParse:
        """Parse the bytes after the Ethernet header as the C ingress does."""

    @abc.abstractmethod
    def reference_restore(
        self, cached: bytes, values: Mapping[str, Any]
    ) -> tuple[str, bytes]:
        """Apply the update rule: ("ok", header bytes to push) or (outcome, b"")."""

    @abc.abstractmethod
    def example_header(self, values: Mapping[str, Any]) -> bytes:
        """One typical valid header (next protocol IPv4) for table-driven tests."""

    @abc.abstractmethod
    def header_strategy(self, values: Mapping[str, Any]):
        """Hypothesis strategy of valid encapsulation headers (bytes) whose
        next protocol is IPv4."""


class KeyPlugin(_Plugin):
    """A key strategy: how ingress and egress agree on a packet's cache key."""

    #: plain packets are flagged in the key's carrier instead of the cache map.
    plain_in_carrier: bool = False
    #: the key survives rewriting of addresses and ports (NAT) by the VNF.
    survives_nat: bool = False
    #: the key is ``struct sfc_key { __u64 id; }``, a fresh id per packet drawn from one
    #: increasing sequence (no two in-flight packets share it), and plain packets are
    #: flagged in the carrier: the core can then keep the cache in a ring (``cache=ring``,
    #: slot = id % cache_size, FIFO eviction) instead of a hash map.
    ring_capable: bool = False

    def extra_programs(self, values: Mapping[str, Any]) -> list[ProgramSpec]:
        return []

    def extra_counters(self, values: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        """Per-CPU counter arrays of the extra programs: {map name: outcome
        names in index order}. Stats and the test kit read them like the core's."""
        return {}

    # ---- the core's build parameters (ingress hook) -------------------
    def core_defaults(self, core: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults of this key's parameters that depend on the core's (e.g. on
        ``core["ingress"]``); explicit values win. Default: none."""
        return {}

    def validate_core(self, values: Mapping[str, Any], core: Mapping[str, Any]) -> None:
        """Checks against the core's parameters; raise ParamError."""

    def extra_programs_for(
        self, values: Mapping[str, Any], core: Mapping[str, Any]
    ) -> list[ProgramSpec]:
        """:meth:`extra_programs` of a build with these core parameters."""
        return self.extra_programs(values)

    def extra_counters_for(
        self, values: Mapping[str, Any], core: Mapping[str, Any]
    ) -> dict[str, tuple[str, ...]]:
        """:meth:`extra_counters` of a build with these core parameters."""
        return self.extra_counters(values)

    # ---- test oracle -------------------------------------------------
    @abc.abstractmethod
    def reference_key(self, l3: bytes, ethertype: int) -> tuple[str, bytes | None]:
        """("ok", key bytes or None if opaque) or (ingress outcome name, None)."""

    def reference_egress_key(self, l3: bytes, ethertype: int) -> tuple[str, bytes | None]:
        """Egress view; by default the same derivation with egress outcome names."""
        outcome, key = self.reference_key(l3, ethertype)
        return {"no_key": "ignored"}.get(outcome, outcome), key
