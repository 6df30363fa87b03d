"""The Python reference of a whole build: what ingress and egress must do.

It combines the chosen encapsulation's and key's reference methods with the
core's rules (outcome order, verdict policy, entry layout) and predicts, for
one frame, the outcome, the verdict, the output frame and the cache entry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Mapping

from sfcframe.entry import FLAG_PLAIN
from sfcframe.plugin import Loose
from sfcframe.spec import ResolvedSpec
from sfcframe.testrun import TC_ACT_OK, TC_ACT_SHOT, XDP_DROP, XDP_PASS

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
PLAIN_MAX = 255


@dataclass(frozen=True)
class Expect:
    outcome: str
    verdict: int
    packet: bytes | None  # expected output frame when the packet passes
    key: bytes | None = None  # the cache key stored (None: none, or opaque)
    value: bytes | None = None  # the cache value stored
    updated: dict[bytes, bytes | None] | None = None  # existing entries changed (None: deleted)
    #: fields of packet (egress) / value (ingress) known only as ranges (a clock)
    loose: tuple[Loose, ...] = ()
    #: the stages' own counters that must move by one: {"<stage>": counter name}
    stage_counters: dict[str, str] = field(default_factory=dict)


def matches(expected: bytes, actual: bytes, loose: tuple[Loose, ...] = ()) -> bool:
    """Equal bytes, except the loose fields, which must lie within their ranges."""
    if len(expected) != len(actual):
        return False
    mask = bytearray(expected)
    got = bytearray(actual)
    for f in loose:
        value = int.from_bytes(actual[f.offset:f.offset + f.size], f.order)
        if not f.lo <= value <= f.hi:
            return False
        mask[f.offset:f.offset + f.size] = got[f.offset:f.offset + f.size]
    return bytes(mask) == actual


def _shift(loose, by: int) -> tuple[Loose, ...]:
    return tuple(Loose(f.offset + by, f.size, f.lo, f.hi, f.order) for f in loose)


class Oracle:
    def __init__(self, spec: ResolvedSpec, strict: bool | None = None):
        self.spec = spec
        self.encap = spec.encap.plugin
        self.key = spec.key.plugin
        self.strict = spec.core["strict"] if strict is None else strict
        self.capacity = spec.header_capacity
        self.layout = spec.value_layout
        self.values = spec.encap_params
        self.key_values = spec.key_params
        self.tc_ingress = spec.ingress_hook == "tc"
        #: the ingress program's pass and drop verdicts (XDP, or TC with ingress=tc)
        self.ingress_pass, self.ingress_drop = (TC_ACT_OK, TC_ACT_SHOT) if self.tc_ingress else (
            XDP_PASS, XDP_DROP)
        self._policy_in = {o.name: o.policy for o in spec.ingress_outcomes}
        self._policy_eg = {o.name: o.policy for o in spec.egress_outcomes}
        #: the stages' runtime settings as the kernel has them (KernelProxy writes them)
        self.stage_settings = {st.name: st.default_settings() for st in spec.stages}

    # ---- entry layout -------------------------------------------------
    @property
    def value_size(self) -> int:
        return self.layout.size

    def value(self, cached: bytes, plain: bool = False, count: int = 1,
              outer_proto: int = 0, area: bytes = b"") -> bytes:
        """struct sfc_value bytes (sfcframe.entry): a header cached under the
        ethertype it arrived with, or a plain marker whose len counts the
        identical plain packets in flight."""
        if plain:
            return self.layout.plain_marker(count)
        return self.layout.pack(0, cached, outer_proto, area=area)

    # ---- verdicts -----------------------------------------------------
    def _verdict(self, policy: str, pass_v: int, drop_v: int) -> int:
        if policy == "pass":
            return pass_v
        if policy == "drop":
            return drop_v
        return drop_v if self.strict else pass_v

    def _in(self, outcome: str, frame: bytes, **kw) -> Expect:
        verdict = self._verdict(self._policy_in[outcome], self.ingress_pass, self.ingress_drop)
        packet = kw.pop("packet", frame) if verdict == self.ingress_pass else None
        return Expect(outcome, verdict, packet, **kw)

    def _eg(self, outcome: str, frame: bytes, packet: bytes | None = None, **kw) -> Expect:
        verdict = self._verdict(self._policy_eg[outcome], TC_ACT_OK, TC_ACT_SHOT)
        out = (packet if packet is not None else frame) if verdict == TC_ACT_OK else None
        return Expect(outcome, verdict, out, **kw)

    # ---- ingress ------------------------------------------------------
    # ---- stages -------------------------------------------------------
    def _stage_body(self, st, header: bytes) -> tuple[int | None, int, int]:
        """(kind, offset, length) of the first carrier data of a kind the stage acts
        on in ``header``; (None, 0, 0) if there is none."""
        for kind in st.plugin.stage_kinds(st.values):
            found = self.encap.carrier_find(st.carrier, header, kind, self.values)
            if found is not None:
                return kind, found[0], found[1]
        return None, 0, 0

    def stages_ingress(self, header: bytes, now: tuple[int, int]
                       ) -> tuple[str, bytes, tuple[Loose, ...]]:
        """Every stage's ingress on a parsed header: the first outcome that is not
        "ok" (or "ok"), the entry's area, and its loose fields (area offsets)."""
        area = bytearray(self.spec.area_bytes)
        loose: list[Loose] = []
        for st in self.spec.stages:
            kind, off, length = self._stage_body(st, header)
            body = header[off:off + length] if kind is not None else None
            done = st.plugin.reference_ingress(body, kind, st.values,
                                               self.stage_settings[st.name], now)
            if done.outcome != "ok":
                return done.outcome, bytes(area), ()
            area[st.offset:st.offset + len(done.data)] = done.data
            loose += _shift(done.loose, st.offset)
        return "ok", bytes(area), tuple(loose)

    def stages_egress(self, header: bytes, area: bytes, now: tuple[int, int]
                      ) -> tuple[str, bytes, tuple[Loose, ...], dict[str, str]]:
        """Every stage's egress on a restored header: outcome ("ok" or an egress
        outcome), the new header, loose fields (header offsets), counters moved."""
        loose: tuple[Loose, ...] = ()
        counted: dict[str, str] = {}
        for st in self.spec.stages:
            kind, off, length = self._stage_body(st, header)
            body = header[off:off + length] if kind is not None else None
            done = st.plugin.reference_egress(
                body, kind, area[st.offset:st.offset + st.size], st.values,
                self.stage_settings[st.name], now,
                hop_limit=self.encap.carrier_hop_limit(st.carrier, header, self.values)
                if kind is not None else 0,
                room=self.encap.carrier_room(st.carrier, header, self.values))
            if done.outcome in self._policy_eg:
                return done.outcome, header, (), counted
            counted[st.name] = done.outcome
            if body is not None and done.data != body:
                header = self.encap.carrier_replace(st.carrier, header, off, length, done.data,
                                                    self.values)
                loose += _shift(done.loose, off)
        return "ok", header, loose, counted

    def stages_inner_ingress(self, l3: bytes, ethertype: int, area: bytes
                             ) -> tuple[str, bytes, bytes]:
        """Every stage's inner-packet hook at ingress (after the key, before the
        entry is stored; the edit after the strip): the first outcome that is not
        "ok" (or "ok"), the entry's area and the inner packet the function gets."""
        for st in self.spec.stages:
            done = st.plugin.reference_inner_ingress(
                l3, ethertype, area[st.offset:st.offset + st.size], st.values,
                self.stage_settings[st.name])
            if done.outcome != "ok":
                return done.outcome, area, l3
            area = area[:st.offset] + done.area + area[st.offset + len(done.area):]
            l3 = done.l3
        return "ok", area, l3

    def stages_inner_egress(self, l3: bytes, ethertype: int, area: bytes,
                            counted: dict[str, str]) -> tuple[str, bytes]:
        """Every stage's inner-packet hook at egress (after the fix-up, before the
        restore): "ok" or an egress outcome, and the inner packet the header goes
        onto; a counter a stage names is added to ``counted`` (unless its header
        hook counted one already: one counter per stage and packet)."""
        for st in self.spec.stages:
            done = st.plugin.reference_inner_egress(
                l3, ethertype, area[st.offset:st.offset + st.size], st.values,
                self.stage_settings[st.name])
            if done.outcome in self._policy_eg:
                return done.outcome, l3
            if done.outcome != "ok" and not counted.get(st.name):
                counted[st.name] = done.outcome
            l3 = done.l3
        return "ok", l3

    def ingress(self, frame: bytes, cache: Mapping[bytes, bytes] | None = None,
                now: tuple[int, int] = (0, 0)) -> Expect:
        """Predict ingress for ``frame`` given the cache's entries ({key: value});
        ``now`` bounds the kernel's clock during the run (for stages)."""
        cache_keys = cache or {}
        if len(frame) < 14:
            return self._in("ignored", frame)
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype not in self.spec.ethertypes:
            return self._not_ours(frame, ethertype, cache_keys)
        parse = self.encap.reference_ingress(frame[14:], self.values, ethertype=ethertype)
        if parse.outcome == "plain":
            return self._not_ours(frame, ethertype, cache_keys)
        if parse.outcome != "ok":
            return self._in(parse.outcome, frame)
        stripped = frame[:12] + struct.pack("!H", parse.inner_ethertype) + frame[14 + parse.strip_len :]
        # ingress=tc: bpf_skb_adjust_room leaves no less than an IP header behind
        min_inner = 40 if parse.inner_ethertype == ETH_P_IPV6 else 20
        too_short = self.tc_ingress and len(frame) - 14 - parse.strip_len < min_inner
        if self.spec.static:
            if too_short:
                return self._in("malformed", frame)
            return self._in("stripped", frame, packet=stripped)
        stage_outcome, area, area_loose = self.stages_ingress(parse.cached, now)
        if stage_outcome != "ok":
            return self._in(stage_outcome, frame)
        outcome, key = self.key.reference_key(frame[14 + parse.strip_len :], parse.inner_ethertype,
                                              self.key_values)
        if outcome != "ok":
            return self._in(outcome, frame)
        inner_outcome, area, l3 = self.stages_inner_ingress(
            stripped[14:], parse.inner_ethertype, area)
        if inner_outcome != "ok":
            return self._in(inner_outcome, frame)
        if key is not None and key in cache_keys:
            return self._in("collision", frame)
        if too_short:
            return self._in("malformed", frame)
        stripped = stripped[:14] + l3
        return self._in("cached", frame, packet=stripped, key=key,
                        value=self.value(parse.cached, outer_proto=ethertype, area=area),
                        loose=_shift(area_loose, self.layout.area_offset))

    def _not_ours(self, frame: bytes, ethertype: int, cache_keys) -> Expect:
        """A frame that is not the encapsulation's takes the plain path."""
        if self.spec.static:
            return self._in("plain" if ethertype in (ETH_P_IP, ETH_P_IPV6) else "ignored", frame)
        return self._ingress_plain(frame, ethertype, cache_keys)

    def _ingress_plain(self, frame: bytes, ethertype: int, cache_keys) -> Expect:
        if not self.spec.core["track_plain"]:
            return self._in("ignored", frame)
        outcome, key = self.key.reference_key(frame[14:], ethertype, self.key_values)
        if outcome != "ok":
            return self._in("ignored", frame)
        if self.key.plain_in_carrier:
            return self._in("plain", frame)
        existing = cache_keys.get(key)
        if existing is None:
            return self._in("plain", frame, key=key, value=self.value(b"", plain=True))
        entry = self.layout.unpack(existing)
        if not entry.plain:
            return self._in("collision", frame)
        count = min(entry.length + 1, PLAIN_MAX)  # one more identical plain packet
        return self._in("plain", frame, updated={key: self.value(b"", plain=True, count=count)})

    # ---- egress -------------------------------------------------------
    def egress_key(self, frame: bytes) -> tuple[str, bytes | None]:
        """The egress key as derived from the frame (keys carried in the frame)."""
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        return self.key.reference_egress_key(frame[14:], ethertype, self.key_values)

    def static_egress(self, frame: bytes, header: bytes) -> Expect:
        """mode=static: ``header`` (the one configured now, b"" for none) pushed
        onto every IPv4/IPv6 frame, exactly as configured (no update rule; the
        encapsulation's fix-up, if it has one, still applies)."""
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype not in (ETH_P_IP, ETH_P_IPV6):
            return self._eg("ignored", frame)
        if not header:
            return self._eg("not_configured", frame)
        return self._eg("pushed", frame,
                        packet=self._pushed(frame, self.spec.ethertypes[0], header))

    def _pushed(self, frame: bytes, outer_proto: int, header: bytes) -> bytes:
        """``frame`` with ``header`` put back under ``outer_proto``, then fixed up."""
        header = self.encap.reference_fixup(header, frame[14:], self.values)
        return frame[:12] + struct.pack("!H", outer_proto) + header + frame[14:]

    def egress(self, frame: bytes, key_outcome: str, found: bytes | None,
               key: bytes | None = None, now: tuple[int, int] = (0, 0)) -> Expect:
        """Predict egress given the key step's outcome and the entry the lookup finds
        (under ``key``); ``updated`` says what becomes of that entry; ``now`` bounds
        the kernel's clock during the run (for stages)."""
        if key_outcome != "ok":
            return self._eg(key_outcome, frame)
        if found is None:
            return self._eg("not_cached", frame)
        entry = self.layout.unpack(found)
        if entry.flags & FLAG_PLAIN:
            left = entry.length - 1
            after = self.value(b"", plain=True, count=left) if left > 0 else None
            return self._eg("plain", frame, updated={key: after})
        outcome, header = self.encap.reference_restore(entry.header, self.values, inner=frame[14:])
        if outcome != "ok":
            return self._eg(outcome, frame)
        if not header:
            return self._eg("restored", frame)
        outcome, header, loose, counted = self.stages_egress(header, entry.area, now)
        if outcome != "ok":
            return self._eg(outcome, frame, stage_counters=counted)
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        outcome, l3 = self.stages_inner_egress(frame[14:], ethertype, entry.area, counted)
        if outcome != "ok":
            return self._eg(outcome, frame, stage_counters=counted)
        inner = frame[:14] + l3
        return self._eg("restored", frame, packet=self._pushed(inner, entry.outer_proto, header),
                        loose=_shift(loose, 14), stage_counters=counted)
