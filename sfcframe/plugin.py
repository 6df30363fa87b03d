"""The plugin contracts: encapsulations and key strategies (contract version 2).

A plugin is a Python class registered under an entry point
(``sfcframe.encaps`` or ``sfcframe.keys``). It declares its parameters, ships
a Jinja2 template of C macros (``bpf_templates/CONTRACT.md`` lists every C
name a macro must define and every core name it may use, per context) and,
for tests, a Python reference of the transformation it performs plus
hypothesis strategies for valid inputs. The test kit
(:mod:`sfcframe.testkit`) runs those references against the kernel.

Every method below is part of the contract; the optional ones have a default
here, so a plugin overrides only what it needs and the core never has to ask
whether a method exists.
"""

from __future__ import annotations

import abc
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from sfcframe.errors import ParamError
from sfcframe.outcomes import Outcome
from sfcframe.params import Param

#: the contract this sfcframe implements; a plugin declares the one it was
#: written for (:attr:`_Plugin.contract`) and discovery refuses a mismatch
CONTRACT_VERSION = 2

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD


@dataclass(frozen=True)
class ProgramSpec:
    """One BPF program of a build: C function name, program type and hook."""

    function: str
    prog_type: str  # "xdp" | "sched_cls"
    hook: str  # "xdp" | "tc-ingress" | "tc-egress"
    source: str = "core"


@dataclass(frozen=True)
class EncapParse:
    """Reference result of looking at one frame's encapsulation (test oracle).

    ``outcome`` is ``"ok"`` (the frame is this encapsulation's: strip
    ``strip_len`` bytes after the Ethernet header, cache ``cached``, the inner
    packet's ethertype is ``inner_ethertype``), ``"plain"`` (not this
    encapsulation's although it carries one of its ethertypes, e.g. IPv6 to
    another address for SRv6: the core's plain path takes it, unmodified) or
    the name of an ingress outcome (core or :meth:`EncapPlugin.ingress_outcomes`).
    """

    outcome: str
    strip_len: int = 0
    inner_ethertype: int = 0
    cached: bytes = b""


class _Plugin(abc.ABC):
    #: the contract version the plugin implements (:data:`CONTRACT_VERSION`).
    contract: int = 1
    #: entry-point name; set by discovery, class default used by tests.
    name: str = ""
    #: one-line description shown by ``sfcframe plugins``.
    description: str = ""
    #: declared parameters, validated by the core before anything renders.
    params: tuple[Param, ...] = ()
    #: template file of C macros, in :meth:`template_dir`.
    template: str = ""

    @classmethod
    def template_dir(cls) -> Path:
        """Where :attr:`template` (and any demo template) lives: the module's folder."""
        return Path(inspect.getfile(cls)).resolve().parent

    def validate(self, values: Mapping[str, Any]) -> None:
        """Cross-parameter checks of this plugin's own values; raise ParamError."""

    def core_defaults(self, core: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults of this plugin's parameters that depend on the core's (e.g.
        on ``core["ingress"]``); values the user gave win. Default: none."""
        return {}

    def validate_core(self, values: Mapping[str, Any], core: Mapping[str, Any]) -> None:
        """Refuse core parameters this plugin cannot serve (a hook, a cache
        kind, ...) by raising ParamError naming both. Default: everything goes."""

    def claims(self, values: Mapping[str, Any]) -> frozenset[str]:
        """Per-packet resources outside the packet's bytes that this plugin writes
        and expects to read back across the function, e.g. ``"skb.mark"`` (the
        metadata key's mark carrier, the apn stage's mark mapping). The core
        refuses a build in which two plugins claim the same resource, naming both;
        nothing is arbitrated at run time. Default: none."""
        return frozenset()

    def template_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What the template's macros get as ``p``: the validated values, plus
        anything derived from them that C needs in another form (e.g. an
        address as a list of bytes). Computed here, never in the template."""
        return dict(values)

    def conformance_params(self) -> list[dict[str, Any]]:
        """Parameter sets the conformance kit (:mod:`sfcframe.testkit.conformance`)
        builds this plugin with, each combined with the other plugins' sets, the
        core's hooks and cache kinds. Give one set per behaviour worth testing
        (a required parameter such as SRv6's ``sid``, a carrier only some
        values offer, a family); parameters left out take their defaults. A
        set the core refuses in some combination (a ParamError from
        ``resolve_spec``) only leaves that combination out. Default: ``[{}]``,
        the defaults alone."""
        return [{}]


class EncapPlugin(_Plugin):
    """An SFC encapsulation: how to recognise, cache, strip and restore it."""

    #: outer ethertype of an encapsulation that has exactly one; others
    #: override :meth:`ethertypes`.
    ethertype: int = 0
    #: optional template (in :meth:`template_dir`) of the macros ``sfcframe demo``
    #: needs (``types``, ``build``, ``parse``: DEMO_HDR_MAX, demo_build(),
    #: demo_hdr_len(); see ``bpf_templates/demo.c.j2``), and optionally ``ranges``
    #: and ``range_names`` (header words the checker checks by range, e.g. the
    #: timestamps of an IOAM trace ``d.ioam``: ``bpf_templates/demo_checker.c.j2``,
    #: ``_demo_ioam.j2``); None: no demo.
    demo_template: str | None = None

    # ---- what the frame looks like -------------------------------------
    def ethertypes(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        """Outer ethertypes whose frames ingress hands to the parser. A frame
        with any other ethertype takes the plain path without being parsed.
        The first one is what a static header is pushed with. An ethertype
        shared with plain traffic (SRv6: 0x86DD) is fine: the parser returns
        SFC_PLAIN for frames that are not its own."""
        return (self.ethertype,)

    def inner_ethertypes(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        """Ethertypes of the inner packets this encapsulation strips down to
        (what the test kit builds frames of)."""
        return (ETH_P_IP,)

    @abc.abstractmethod
    def header_capacity(self, values: Mapping[str, Any]) -> int:
        """Largest number of header bytes a cache entry must hold (0..1020)."""

    @abc.abstractmethod
    def max_strip(self, values: Mapping[str, Any]) -> int:
        """Most bytes ingress removes after the Ethernet header."""

    def ingress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        """Ingress outcomes the parser may return besides the core's (e.g.
        ``sl_zero``); each gets a counter ``SFC_IN_<NAME>`` and a policy."""
        return []

    def egress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        """Egress outcomes the update rule may return besides the core's (e.g.
        ``si_expired``); each gets a counter ``SFC_EG_<NAME>`` and a policy."""
        return []

    def describe_header(self, header: bytes, values: Mapping[str, Any]) -> str:
        """A cached header (``val->hdr``, before the update rule) in the
        encapsulation's own notation, for people (``sfcframe cache``). The default
        is hex; it must not raise on any bytes (an entry may be half-written)."""
        return header.hex() or "(empty)"

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
    def reference_ingress(
        self, l2_payload: bytes, values: Mapping[str, Any], ethertype: int | None = None
    ) -> EncapParse:
        """Parse the bytes after the Ethernet header as the C ingress does;
        ``ethertype`` is the frame's (one of :meth:`ethertypes`; None: the first)."""

    @abc.abstractmethod
    def reference_restore(
        self, cached: bytes, values: Mapping[str, Any], inner: bytes = b""
    ) -> tuple[str, bytes]:
        """Apply the update rule to the cached bytes, for the packet egress sees:
        ``inner`` is that packet from its L3 header on (as the function sent it).
        Returns ("ok", header bytes to push) or (egress outcome, b"")."""

    @abc.abstractmethod
    def example_header(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP) -> bytes:
        """One typical valid header whose next protocol is ``inner_ethertype``,
        for table-driven tests (lengths that depend on the inner packet are
        filled in by :meth:`encapsulate`)."""

    @abc.abstractmethod
    def header_strategy(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP):
        """Hypothesis strategy of valid headers (bytes) whose next protocol is
        ``inner_ethertype`` (one of :meth:`inner_ethertypes`)."""

    def reference_fixup(self, header: bytes, inner: bytes, values: Mapping[str, Any]) -> bytes:
        """Python twin of the template's optional ``fixup`` macro: the header as
        it reads once restored (cache mode, after :meth:`reference_restore`) or
        pushed (static mode) in front of ``inner``. Default: unchanged."""
        return header

    def encapsulate(
        self, header: bytes, inner: bytes, values: Mapping[str, Any]
    ) -> tuple[int, bytes]:
        """A frame's ethertype and the bytes after its Ethernet header for
        ``header`` (from :meth:`header_strategy`) in front of ``inner``. The
        default puts them side by side under the first ethertype; a plugin
        whose header has a length covering the inner packet (SRv6's payload
        length) fills it in here."""
        return self.ethertypes(values)[0], header + inner

    # ---- carriers: where stages find their data ----------------------
    def carriers(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the carriers this encapsulation offers to stages (e.g.
        ``ioam``: the IOAM options it carries). For each, the template's
        ``carriers`` macro defines ``carrier_<name>_find()`` (CONTRACT.md)."""
        return ()

    def carrier_find(self, carrier: str, header: bytes, kind: int,
                     values: Mapping[str, Any]) -> tuple[int, int] | None:
        """Python twin of ``carrier_<carrier>_find()``: (offset, length) of the
        data of ``kind`` in a cached ``header``, or None."""
        raise NotImplementedError(f"encap {self.name} offers no carrier {carrier!r}")

    def carrier_hop_limit(self, carrier: str, header: bytes, values: Mapping[str, Any]) -> int:
        """Python twin of ``carrier_<carrier>_hop_limit()``: the hop limit (TTL) a
        telemetry stage records for a restored ``header``."""
        raise NotImplementedError(f"encap {self.name} offers no carrier {carrier!r}")

    def carrier_room(self, carrier: str, header: bytes, values: Mapping[str, Any]) -> int:
        """Python twin of ``carrier_<carrier>_room()``: bytes the carrier data may grow
        by in place (``carrier_<carrier>_grow()``); 0: it cannot grow."""
        return 0

    def carrier_replace(self, carrier: str, header: bytes, offset: int, length: int,
                        body: bytes, values: Mapping[str, Any]) -> bytes:
        """``header`` with the carrier data at ``offset`` (``length`` bytes) replaced by
        ``body``, the lengths that cover it fixed where ``body`` grew (the Python side
        of ``carrier_<carrier>_grow()``). Default: the bytes replaced."""
        return header[:offset] + body + header[offset + length:]

    def carrier_embed(self, carrier: str, header: bytes, kind: int, body: bytes,
                      values: Mapping[str, Any]) -> bytes:
        """A valid header like ``header`` (from :meth:`header_strategy`) that also
        carries ``body`` as data of ``kind`` in ``carrier``, for the test kit. Raises
        ValueError when the build (``values``) has no room for such data at all (e.g.
        an option in a Hop-by-Hop header the build caches none of): the conformance
        kit then draws other data, since no valid packet of this build carries it."""
        raise NotImplementedError(f"encap {self.name} offers no carrier {carrier!r}")


@dataclass(frozen=True)
class Loose:
    """A field of an expected output the oracle cannot know exactly (a time): its
    bytes are not compared; its big-endian value must lie within lo..hi."""

    offset: int
    size: int
    lo: int
    hi: int
    order: str = "big"  # byte order of the value ("little": host order on x86)


@dataclass(frozen=True)
class LabelledCounter:
    """A stage's packet and byte counters per label (e.g. per APN ID), in a bounded
    BPF hash map ``stage_<stage>_<name>`` keyed by ``size`` label bytes: at most
    ``max_labels`` labels are counted one by one; what arrives once the map is full
    is counted in the overflow counter ``stage_<stage>_<name>_other`` (shown as
    the label ``other``), so nothing goes uncounted. ``label`` names the label in
    ``sfcframe stats`` (JSON key, Prometheus label name: ``[a-z_][a-z0-9_]*``)."""

    label: str
    size: int
    max_labels: int
    help: str


@dataclass(frozen=True)
class InnerResult:
    """Reference result of a stage's inner-packet hook (test oracle): ``outcome``
    (``"ok"``, an ingress/egress outcome, or at egress a counter name of the
    stage: the one counter that moved), the entry's stage bytes afterwards
    (``area``, ingress) and the inner packet from its L3 header on (``l3``)."""

    outcome: str
    area: bytes
    l3: bytes


@dataclass(frozen=True)
class StageResult:
    """Reference result of a stage on one packet (test oracle).

    ``outcome`` is ``"ok"`` or an outcome name; ``data`` the expected bytes
    (the stage's entry bytes at ingress, the carrier data at egress) with
    ``loose`` fields checked by range instead of by value."""

    outcome: str
    data: bytes = b""
    loose: tuple[Loose, ...] = ()


@dataclass(frozen=True)
class BenchCase:
    """One row of ``sfcframe bench cost`` for a stage: the carrier data of a
    typical packet (``kind``, ``body``, as ``carrier_embed`` takes them), the
    runtime settings and build parameters of the stage, a short label of the
    carried data (the row without the stage is named after it, e.g. ``trace``),
    what the stage does, the stage counters every such packet moves once each
    in a round trip (checked on every run), and the row's label (default: the
    stage's name)."""

    kind: int
    body: bytes
    settings: Mapping[str, int]
    carried: str
    what: str
    counters: tuple[str, ...]
    label: str = ""
    params: tuple[tuple[str, Any], ...] = ()


class StagePlugin(_Plugin):
    """A metadata stage (INT/IOAM, proof of transit, APN ...): it rides inside an
    encapsulation, in a carrier the encapsulation offers, and acts on the cached
    header on behalf of the SFC-unaware function: it may record bytes of its own
    into the cache entry at ingress and edit the header at egress. Several
    stages compose in one build, in the order given (``--stage a --stage b``).

    Optional extensions (``bpf_templates/CONTRACT.md``, "Stages"): hooks on the inner
    packet (template macros ``inner_ingress`` / ``inner_egress``, Python twins
    :meth:`reference_inner_ingress` / :meth:`reference_inner_egress`), counters per
    label (:meth:`labelled_counters`) and kinds that depend on parameters
    (:meth:`stage_kinds`)."""

    #: carriers it can ride, in order of preference (names encapsulations offer)
    carriers: tuple[str, ...] = ()
    #: the kind of carrier data it acts on (for ``ioam``: the IOAM option type)
    kinds: tuple[int, ...] = ()

    def stage_kinds(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        """The kinds of carrier data this build of the stage acts on, in the order the
        oracle looks for them; default :attr:`kinds`. A stage whose kinds depend on
        its parameters (code points chosen at build time) overrides this."""
        return tuple(self.kinds)

    def entry_bytes(self, values: Mapping[str, Any]) -> int:
        """Bytes this stage adds to every cache entry (``area`` in C), 0..64."""
        return 0

    def settings(self, values: Mapping[str, Any]) -> tuple[Param, ...]:
        """Runtime settings (``int`` parameters: node ids, secrets): they live in
        the stage's settings map, written by ``sfcframe set NAME <stage>.<name>=V``,
        never in the rendered C. The C reads them as ``__u64`` fields."""
        return ()

    def ingress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        """Ingress outcomes the stage may return (``SFC_IN_<NAME>``)."""
        return []

    def egress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        """Egress outcomes the stage may return (``SFC_EG_<NAME>``)."""
        return []

    def counters(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the stage's own per-CPU counters (not outcomes: a packet may
        move one and still end in any outcome), e.g. ``filled``, ``overflow``.
        The C counts with ``stage_<name>_count(STAGE_<NAME>_<COUNTER>)``;
        ``sfcframe stats`` shows them."""
        return ()

    def initial_settings(self, values: Mapping[str, Any]) -> dict[str, int]:
        """Settings the runtime computes when it starts an instance, in place of
        their defaults (e.g. the offset from the kernel's monotonic clock to
        POSIX time). Default: none."""
        return {}

    def labelled_counters(self, values: Mapping[str, Any]) -> dict[str, LabelledCounter]:
        """Packet and byte counters per label (e.g. per APN ID): {name: what}. The
        core renders for each a bounded hash map, an overflow counter and
        ``stage_<stage>_count_<name>(const struct stage_<stage>_<name>_label *label,
        __u64 bytes)``; ``sfcframe stats`` shows them per label (JSON, and
        Prometheus with the label named :attr:`LabelledCounter.label`). Default: none."""
        return {}

    def label_text(self, counter: str, raw: bytes, values: Mapping[str, Any]) -> str:
        """How ``stats`` writes the label bytes ``raw`` of ``counter``. Default: hex."""
        return "0x" + raw.hex()

    def histograms(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Per-CPU log2 histograms the stage fills: {map name: what and unit};
        ``sfcframe stats`` shows their percentiles. Bucket i counts values in
        [2^i, 2^(i+1)) (bucket 0 also 0), 64 buckets."""
        return {}

    def bench_cases(self, values: Mapping[str, Any]) -> Sequence[BenchCase]:
        """Representative packets for ``sfcframe bench cost``, which measures the
        stage on every encapsulation offering its carrier, against the same build
        and packets without the stage. Empty (the default): no rows."""
        return ()

    # ---- test oracle -------------------------------------------------
    @abc.abstractmethod
    def reference_ingress(self, body: bytes | None, kind: int | None, values: Mapping[str, Any],
                          settings: Mapping[str, int], now: tuple[int, int]) -> StageResult:
        """What ingress does for a packet whose carrier holds ``body`` of ``kind``
        (None: the packet has none): the outcome and the stage's expected entry
        bytes. ``now`` bounds the kernel's clock (monotonic ns) during the run."""

    @abc.abstractmethod
    def reference_egress(self, body: bytes | None, kind: int | None, area: bytes,
                         values: Mapping[str, Any], settings: Mapping[str, int],
                         now: tuple[int, int], *, hop_limit: int = 0,
                         room: int = 0) -> StageResult:
        """What egress does to the carrier data ``body`` given the entry bytes
        ``area`` ingress recorded: the outcome (a counter name, or an egress
        outcome) and the expected new body. ``hop_limit`` and ``room`` are what
        the carrier's ``carrier_<name>_hop_limit()`` / ``_room()`` say for the
        header being restored."""

    @abc.abstractmethod
    def body_strategy(self, values: Mapping[str, Any]):
        """Hypothesis strategy of (kind, body) pairs the stage acts on."""

    # ---- the inner packet (optional: templates with inner_ingress / inner_egress) ----
    def reference_inner_ingress(self, l3: bytes, ethertype: int, area: bytes,
                                values: Mapping[str, Any],
                                settings: Mapping[str, int]) -> InnerResult:
        """Python twin of the template's optional ``inner_ingress`` macro
        (``stage_<name>_inner_peek()`` and ``stage_<name>_inner_ingress()``): given
        the inner packet ``l3`` (as the function will receive it, before this stage's
        edit) of ``ethertype`` and the stage's entry bytes ``area`` after
        :meth:`reference_ingress`, the outcome, the entry bytes stored and the inner
        packet handed to the function. Default: nothing changes."""
        return InnerResult("ok", area, l3)

    def reference_inner_egress(self, l3: bytes, ethertype: int, area: bytes,
                               values: Mapping[str, Any],
                               settings: Mapping[str, int]) -> InnerResult:
        """Python twin of the optional ``inner_egress`` macro
        (``stage_<name>_inner_egress()``): the inner packet ``l3`` as the function
        sent it, the entry bytes ``area`` ingress stored; the outcome (``"ok"``: no
        counter of the stage moved; a counter name; or an egress outcome) and the
        inner packet the header is restored onto. Default: nothing changes."""
        return InnerResult("ok", area, l3)


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

    def inner_ethertypes(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        """Ethertypes of the inner packets this key covers (others are ``no_key``)."""
        return (ETH_P_IP,)

    def extra_programs(self, values: Mapping[str, Any],
                       core: Mapping[str, Any]) -> list[ProgramSpec]:
        """Programs of the key's own in a build with these core parameters
        (defined by the template's ``programs`` macro)."""
        return []

    def extra_counters(self, values: Mapping[str, Any],
                       core: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        """Per-CPU counter arrays of :meth:`extra_programs`: {map name: outcome
        names in index order}. Stats and the test kit read them like the core's."""
        return {}

    # ---- test oracle -------------------------------------------------
    @abc.abstractmethod
    def reference_key(self, l3: bytes, ethertype: int,
                      values: Mapping[str, Any]) -> tuple[str, bytes | None]:
        """("ok", key bytes, or None when the key is opaque, e.g. an id) or
        (ingress outcome name, None)."""

    def reference_egress_key(self, l3: bytes, ethertype: int,
                             values: Mapping[str, Any]) -> tuple[str, bytes | None]:
        """Egress view; by default the same derivation with egress outcome names."""
        outcome, key = self.reference_key(l3, ethertype, values)
        return {"no_key": "ignored"}.get(outcome, outcome), key

    def carry_to_egress(self, meta: bytes, values: Mapping[str, Any]) -> int:
        """The ``skb->mark`` egress sees after XDP ingress left metadata ``meta``
        in front of the packet: what travels between two BPF_PROG_TEST_RUN
        calls (a TC ingress program writes the mark itself). Keys carried in
        the packet itself: 0."""
        return 0

    def reference_egress_carried(self, frame: bytes, mark: int, values: Mapping[str, Any]
                                 ) -> tuple[str, bytes | None]:
        """Egress key step for a TC test run of ``frame`` with ``skb->mark``:
        ("ok", cache key bytes) or (egress outcome, None). Default: derived from
        the frame (:meth:`reference_egress_key`)."""
        import struct

        if len(frame) < 14:
            return "ignored", None
        return self.reference_egress_key(frame[14:], struct.unpack_from("!H", frame, 12)[0],
                                         values)

    def test_run_round_trip(self, values: Mapping[str, Any]) -> bool:
        """Whether ingress -> :meth:`carry_to_egress` -> egress restores under
        BPF_PROG_TEST_RUN (False where the carrier cannot be handed over there,
        e.g. XDP data_meta to a TC program)."""
        return True

    def describe_key(self, key: bytes, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """The key's fields, for people (``sfcframe cache``, diagnostics)."""
        return {"key": key.hex()}

    # ---- inner packets for the test kit --------------------------------
    def example_inner(self, values: Mapping[str, Any], ethertype: int = ETH_P_IP) -> bytes:
        """One typical inner packet of ``ethertype`` (one of :meth:`inner_ethertypes`)
        that this key keys, from its L3 header on. Default: IPv4/TCP or IPv6/TCP."""
        from sfcframe.packets import example_inner

        return example_inner(ethertype)

    def inner_strategy(self, values: Mapping[str, Any], ethertype: int = ETH_P_IP):
        """Hypothesis strategy of inner packets (bytes) of ``ethertype`` this key keys.
        Default: IPv4/TCP or IPv6/TCP with options (:mod:`sfcframe.packets`)."""
        from sfcframe.packets import inner_strategy

        return inner_strategy(ethertype)

    def flow_pair_strategy(self, values: Mapping[str, Any], ethertype: int = ETH_P_IP):
        """Hypothesis strategy of two inner packets (bytes, bytes) of ``ethertype`` from
        one flow that this key keys apart (consecutive packets of one stream: the next
        TCP sequence number, RTP packet, ESP sequence number, ...). The kit's per-packet
        property sends them with different headers. Default: two IPv4/TCP segments
        (IPv6/TCP) of one connection, sequence numbers one apart."""
        from hypothesis import strategies as st

        from sfcframe.packets import tcp_ipv4, tcp_ipv6

        if ethertype == ETH_P_IPV6:
            return st.integers(0, 2**32 - 2).map(
                lambda seq: (tcp_ipv6(seq=seq), tcp_ipv6(seq=seq + 1)))
        return st.integers(0, 2**32 - 2).map(
            lambda seq: (tcp_ipv4(seq=seq, ip_id=7), tcp_ipv4(seq=seq + 1, ip_id=8)))

    def vnf_steps(self, values: Mapping[str, Any], inner: bytes) -> tuple[str, ...]:
        """Names of the test kit's function steps (``sfcframe.packets.VNF_STEPS``) that
        keep the key of the keyed packet ``inner``: the ones that change only what the
        key leaves out. Default: forwarding, a router, a length change and DSCP/ECN
        re-marking; source NAT too for IPv4 when :attr:`survives_nat`. A key over
        payload bytes (a hash, a length) leaves ``trim`` out."""
        from sfcframe.packets import VNF_STEPS_IPV6

        if inner and inner[0] >> 4 == 6:
            return VNF_STEPS_IPV6
        return ("identity", "ttl", "trim", "remark") + (("nat",) if self.survives_nat else ())
