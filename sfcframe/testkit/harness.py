"""Checking a kernel build against the oracle, one program run at a time.

Each ``check_*`` call runs one program on one frame and asserts, against
:class:`~sfcframe.testkit.oracle.Oracle`: the verdict, the exact output
frame, that exactly one counter moved (the predicted outcome's), and that
the cache changed exactly as predicted (nothing half-modified).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sfcframe.testkit.kernel import KernelProxy
from sfcframe.testkit.oracle import Expect, Oracle, matches
from sfcframe.testkit.packets import ETH_P_IP, ether
from sfcframe.testrun import RunResult


def hexdiff(expected: bytes, actual: bytes) -> str:
    """Where two frames first differ, as hex around that offset."""
    for i, (a, b) in enumerate(zip(expected, actual)):
        if a != b:
            break
    else:
        i = min(len(expected), len(actual))
    lo = max(0, i - 8)
    return (
        f"lengths {len(expected)} vs {len(actual)}; first difference at byte {i}\n"
        f"  expected ...{expected[lo:i + 16].hex(' ')}\n"
        f"  actual   ...{actual[lo:i + 16].hex(' ')}"
    )


def _dissect(frame: bytes) -> str:
    try:
        import scapy.contrib.mpls  # noqa: F401  (binds 0x8847)
        import scapy.contrib.nsh  # noqa: F401  (binds 0x894F)
        from scapy.layers.l2 import Ether

        return Ether(frame).summary()
    except Exception as exc:  # dissection is a diagnostic aid only
        return f"<undissectable: {exc}>"


@dataclass
class Checked:
    result: RunResult
    expect: Expect
    new_key: bytes | None = None


class Harness:
    def __init__(self, proxy: KernelProxy, strict: bool = False):
        self.proxy = proxy
        self.strict = strict
        proxy.set_strict(strict)
        self.oracle = Oracle(proxy.spec, strict=strict)
        self.key = proxy.spec.key.plugin
        self.values = proxy.spec.key_params
        self.encap = proxy.spec.encap.plugin
        self.encap_values = proxy.spec.encap_params

    # ---- frames -------------------------------------------------------
    @property
    def inner_ethertypes(self) -> tuple[int, ...]:
        """Inner packet families both the encapsulation and the key handle."""
        keyed = self.key.inner_ethertypes(self.values)
        return tuple(t for t in self.encap.inner_ethertypes(self.encap_values) if t in keyed)

    def frame(self, header: bytes, inner: bytes) -> bytes:
        """An encapsulated frame: ``header`` (from the encapsulation's strategy or
        example) in front of ``inner``, lengths filled in by the encapsulation."""
        ethertype, payload = self.encap.encapsulate(header, inner, self.encap_values)
        return ether(ethertype) + payload

    def example_frame(self, inner: bytes, inner_ethertype: int = ETH_P_IP) -> bytes:
        return self.frame(self.encap.example_header(self.encap_values, inner_ethertype), inner)

    def reset(self) -> None:
        self.proxy.clear()

    def set_stage_settings(self, stage: str, settings) -> None:
        """A stage's runtime settings, in the kernel and in the oracle."""
        self.proxy.set_stage_settings(stage, settings)
        self.oracle.stage_settings[stage] = {**self.oracle.stage_settings[stage], **settings}

    def _assert_run(self, direction: str, frame: bytes, expect: Expect, result: RunResult,
                    before: dict, after: dict) -> None:
        names = self.proxy.ingress_names if direction == "ingress" else self.proxy.egress_names
        delta = {n: after[direction][n] - before[direction][n] for n in names}
        moved = {n: d for n, d in delta.items() if d}
        assert moved == {expect.outcome: 1}, (
            f"{direction}: expected outcome {expect.outcome}, counters moved {moved}; "
            f"frame {_dissect(frame)}"
        )
        assert result.retval == expect.verdict, (
            f"{direction} verdict {result.retval} != {expect.verdict} ({expect.outcome})"
        )
        other = "ingress" if direction == "egress" else "egress"
        assert after[other] == before[other], f"{direction} run moved {other} counters"
        if expect.packet is not None and direction == "egress":
            assert matches(expect.packet, result.packet, expect.loose), (
                f"{direction} output differs ({expect.outcome}):\n"
                f"{hexdiff(expect.packet, result.packet)}\n"
                f"  loose fields (offset, size, range): "
                f"{[(f.offset, f.size, f.lo, f.hi) for f in expect.loose]}"
            )
        elif expect.packet is not None:
            assert result.packet == expect.packet, (
                f"{direction} output differs ({expect.outcome}):\n"
                f"{hexdiff(expect.packet, result.packet)}\n"
                f"  expected {_dissect(expect.packet)}\n  actual   {_dissect(result.packet)}"
            )

    def check_ingress(self, frame: bytes) -> Checked:
        cache_before = self.proxy.cache()
        counters_before = self.proxy.counters()
        t0 = time.monotonic_ns()
        result = self.proxy.ingress(frame)
        expect = self.oracle.ingress(frame, cache_before, now=(t0, time.monotonic_ns()))
        self._assert_run("ingress", frame, expect, result, counters_before, self.proxy.counters())
        cache_after = self.proxy.cache()
        added = {k: v for k, v in cache_after.items() if k not in cache_before}
        expected_existing = {**cache_before, **(expect.updated or {})}
        assert all(cache_after.get(k) == v for k, v in expected_existing.items()), (
            "ingress changed an existing cache entry other than predicted"
        )
        if expect.value is None:
            assert not added, f"ingress ({expect.outcome}) added entries {added}"
            return Checked(result, expect)
        assert len(added) == 1, f"ingress ({expect.outcome}) added {len(added)} entries"
        (key, value), = added.items()
        assert matches(expect.value, value, expect.loose), (
            f"cache value:\n{hexdiff(expect.value, value)}")
        if expect.key is not None:
            assert key == expect.key, f"cache key:\n{hexdiff(expect.key, key)}"
        return Checked(result, expect, new_key=key)

    # ---- egress -------------------------------------------------------
    def carried_mark(self, ingress: RunResult) -> int:
        """What the key's carrier hands to egress (skb->mark), if anything. With
        ingress=tc the ingress program wrote skb->mark itself: that mark."""
        if self.proxy.spec.ingress_hook == "tc":
            return ingress.mark
        return self.key.carry_to_egress(ingress.meta, self.values)

    def egress_key(self, frame: bytes, mark: int) -> tuple[str, bytes | None]:
        return self.key.reference_egress_carried(frame, mark, self.values)

    def check_egress(self, frame: bytes, mark: int = 0) -> Checked:
        cache_before = self.proxy.cache()
        counters_before = self.proxy.counters()
        key_outcome, key = self.egress_key(frame, mark)
        found = cache_before.get(key) if key_outcome == "ok" else None
        t0 = time.monotonic_ns()
        result = self.proxy.egress(frame, mark=mark)
        expect = self.oracle.egress(frame, key_outcome, found, key, now=(t0, time.monotonic_ns()))
        counters_after = self.proxy.counters()
        self._assert_run("egress", frame, expect, result, counters_before, counters_after)
        for stage in self.proxy.spec.stages:
            moved = {n: counters_after[stage.name][n] - counters_before[stage.name][n]
                     for n in counters_after[stage.name]}
            want = expect.stage_counters.get(stage.name)
            assert {n: d for n, d in moved.items() if d} == ({want: 1} if want else {}), (
                f"stage {stage.name} counters moved {moved}, expected {want}")
        cache_after = self.proxy.cache()
        expected_cache = dict(cache_before)
        if found is not None:
            del expected_cache[key]  # a hit is consumed, whatever follows ...
        for changed, value in (expect.updated or {}).items():
            if value is not None:  # ... but a plain marker counting several packets stays
                expected_cache[changed] = value
        assert cache_after == expected_cache, "egress left the cache in an unexpected state"
        return Checked(result, expect)

    def check_static_egress(self, frame: bytes, header: bytes) -> Checked:
        """mode=static: egress with ``header`` configured now (b"": none)."""
        counters_before = self.proxy.counters()
        expect = self.oracle.static_egress(frame, header)
        result = self.proxy.egress(frame)
        self._assert_run("egress", frame, expect, result, counters_before, self.proxy.counters())
        return Checked(result, expect)

    def round_trip(self, frame: bytes, vnf) -> tuple[Checked, Checked | None]:
        """ingress -> vnf(stripped frame) -> egress, every step checked."""
        ingress = self.check_ingress(frame)
        if ingress.expect.packet is None:
            return ingress, None
        plain = vnf(ingress.result.packet)
        egress = self.check_egress(plain, mark=self.carried_mark(ingress.result))
        return ingress, egress
