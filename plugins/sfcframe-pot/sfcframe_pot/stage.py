"""The ``pot`` stage: proof of transit updated on behalf of the SFC-unaware function.

It rides the ``ioam`` carrier (the IOAM POT option, RFC 9197 section 4.5, in
SRv6's outer Hop-by-Hop header per RFC 9486 or behind NSH per RFC 9452). At
egress, before the header goes back onto the packet, it adds this node's term
to the Cumulative (:mod:`sfcframe_pot.profile` explains the scheme): so the
proof says "this packet passed the proxy's host", where the function runs —
not that the function itself processed it, which an SFC-unaware function
cannot prove.

Shares, public values and LPCs (two profiles, selected by the option's flag)
and the namespace are runtime settings: ``sfcframe set NAME --from
node-2.settings``. They are never in the rendered C, the goldens, the state
record, logs or ``stats``.
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.params import Param
from sfcframe.plugin import BenchCase, StagePlugin, StageResult

from sfcframe_pot import arith, option

#: a share, public value or LPC: a residue mod 2^61 - 1
_RESIDUE = arith.P - 1


class PotStage(StagePlugin):
    contract = 2
    description = ("proof of transit (IOAM POT type 0, RFC 9197; Shamir's secret sharing of "
                   "draft-ietf-sfc-proof-of-transit) updated for the function at egress")
    template = "pot.c.j2"
    carriers = ("ioam",)
    kinds = (option.IOAM_POT,)

    def settings(self, values: Mapping[str, Any]) -> tuple[Param, ...]:
        out = [Param("namespace", "int", 0, "IOAM Namespace-ID of the POT options updated",
                     0, 0xFFFF)]
        for k in (0, 1):
            out += [
                Param(f"share_{k}", "int", 0, f"profile {k}: this node's share of the secret "
                      "polynomial (secret)", 0, _RESIDUE),
                Param(f"public_{k}", "int", 0, f"profile {k}: the public polynomial at this "
                      "node's point, without its per-packet constant", 0, _RESIDUE),
                Param(f"lpc_{k}", "int", 0, f"profile {k}: this node's Lagrange polynomial "
                      "constant (0: profile not configured)", 0, _RESIDUE),
            ]
        return tuple(out)

    def counters(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        return ("updated", "no_pot", "other_namespace", "unknown_type", "no_profile",
                "malformed")

    def bench_cases(self, values: Mapping[str, Any]) -> list[BenchCase]:
        """A POT option of profile 0 with 61-bit RND and CML, a configured profile:
        one full update (three folds, two additions, one 61 x 61-bit product)."""
        pot = option.PotOption(0, 0x0123456789ABCDEF, 0x0FEDCBA987654321)
        settings = {"share_0": arith.P - 12345, "public_0": 0x1234_5678_9ABC_DEF,
                    "lpc_0": arith.P // 3}
        return [BenchCase(option.IOAM_POT, pot.pack(), settings, "potopt",
                          "pot stage updating CML (profile 0: one multiplication mod 2^61-1)",
                          ("updated",))]

    # ---- test oracle -------------------------------------------------
    def reference_ingress(self, body, kind, values, settings, now) -> StageResult:
        return StageResult("ok", b"")

    def reference_egress(self, body, kind, area, values, settings, now, *,
                         hop_limit: int = 0, room: int = 0) -> StageResult:
        if body is None:
            return StageResult("no_pot")
        if len(body) < option.LENGTH:
            return StageResult("malformed", body)
        pot = option.PotOption.parse(body)
        if pot.namespace != settings["namespace"] & 0xFFFF:
            return StageResult("other_namespace", body)
        if pot.pot_type != option.POT_TYPE_0:
            return StageResult("unknown_type", body)
        k = pot.profile
        lpc = arith.fold(settings[f"lpc_{k}"])
        if not lpc:
            return StageResult("no_profile", body)
        share = arith.addmod(arith.fold(settings[f"share_{k}"]),
                             arith.fold(settings[f"public_{k}"]))
        cml = arith.update(pot.cml, pot.rnd, share, lpc)
        return StageResult("updated", pot.with_cml(cml).pack() + body[option.LENGTH:])

    def body_strategy(self, values: Mapping[str, Any]):
        """(kind, body): POT options with any RND and CML (the full 64-bit range),
        both profiles, mostly namespace 0 and type 0."""
        from hypothesis import strategies as st

        u64 = st.one_of(st.integers(0, (1 << 64) - 1),
                        st.sampled_from([0, 1, arith.P - 1, arith.P, arith.P + 1,
                                         (1 << 64) - 1, 1 << 61, (1 << 61) - 2]))
        pot = st.builds(option.PotOption,
                        namespace=st.sampled_from([0, 0, 0, 0, 0x8FC0]),
                        rnd=u64, cml=u64,
                        flags=st.sampled_from([0, 0, option.FLAG_PROFILE, 0x01]),
                        pot_type=st.sampled_from([0, 0, 0, 0, 0, 1]))
        return st.tuples(st.just(option.IOAM_POT), pot.map(option.PotOption.pack))
