"""The SRv6 testbed's stamper and checker (``bpf_templates/demo_srv6_programs.c.j2``).

Rendered, compiled and attached with the demo's machinery
(:mod:`sfcframe.demo.programs`): the stamper on TC egress of the SFF's
interface toward the VNF host (after the kernel's H.Encaps), the checker on TC
ingress of the decapsulating node's interface (before the kernel's seg6local).
Unlike the MPLS/NSH demo, no BPF program pushes or strips the encapsulation:
the kernel does both, the programs only write and check per-packet fields.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import struct
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import jinja2

from sfcframe import __version__
from sfcframe.demo import programs, srv6_ioam, srv6_plan
from sfcframe.errors import RenderError

STAMP_OUTCOMES = ("stamped", "corrupted", "other", "malformed", "error")
#: the checker's outcomes in the template's order; those between "match" and
#: "unencapsulated" are the mismatch kinds (one per checked field)
CHECK_OUTCOMES = ("match", "sl", "da", "segments", "header", "hop_limit", "payload_len", "tag",
                  "flow_label", "unencapsulated", "malformed", "other")
MISMATCH_KINDS = CHECK_OUTCOMES[1:CHECK_OUTCOMES.index("unencapsulated")]
SAMPLE_BYTES = 128
#: --ioam: the stamper's insertion outcomes (the checker's: srv6_ioam.IOAM_OUTCOMES)
IOAM_INSERT_OUTCOMES = ("inserted", "has_hbh", "no_room")
IOAM_VNF_STATS = ("slots", "delay_available", "delay_unavailable", "delay_overflow",
                  "delay_exceeds_path", "delay_sum_ns", "delay_min_ns", "delay_max_ns",
                  "path_count", "path_sum_ns", "path_max_ns")


def template_plan() -> SimpleNamespace:
    """What the template sees as ``p``: the plan's addresses as text and words."""

    def addr(text: str) -> SimpleNamespace:
        return SimpleNamespace(text=text, words=srv6_plan.words(text))

    return SimpleNamespace(
        tunsrc=addr(srv6_plan.TUNSRC), sid_proxy=addr(srv6_plan.SID_PROXY),
        sid_dx4=addr(srv6_plan.SID_DX4), sid_dt6=addr(srv6_plan.SID_DT6),
        rcv4=addr(srv6_plan.RCV4), rcv6=addr(srv6_plan.RCV6), segments=2,
        ioam=SimpleNamespace(
            outcomes=srv6_ioam.IOAM_OUTCOMES, max_hbh=srv6_ioam.MAX_HBH,
            max_words=srv6_ioam.MAX_NODE_WORDS, writers=len(srv6_ioam.MIDDLE),
            trace_off=srv6_ioam.TRACE_OFF, data_off=srv6_ioam.DATA_OFF,
            max_path_us=srv6_ioam.MAX_PATH_US,
        ),
    )


def render() -> str:
    p = template_plan()
    describe = (f"SIDs proxy {p.sid_proxy.text}, End.DX4 {p.sid_dx4.text}, End.DT6 {p.sid_dt6.text}; "
                f"source {p.tunsrc.text}; receiver {p.rcv4.text} / {p.rcv6.text}")
    try:
        return programs.template_env().get_template("core/demo_srv6_programs.c.j2").render(
            version=__version__, p=p, describe=describe)
    except jinja2.TemplateError as exc:
        raise RenderError(f"SRv6 testbed programs: {exc}") from exc


def decode_sample(outer: bytes) -> dict[str, Any]:
    """The fields the checker looks at, decoded from a sample's outer bytes (the
    IPv6 header, at most one Hop-by-Hop header, the SRH)."""
    vtcfl, plen, nh, hlim = struct.unpack_from("!IHBB", outer)
    out: dict[str, Any] = {
        "hop_limit": hlim, "flow_label": f"0x{vtcfl & 0xFFFFF:05x}", "payload_len": plen,
        "src": str(ipaddress.IPv6Address(outer[8:24])), "dst": str(ipaddress.IPv6Address(outer[24:40])),
    }
    off = 40
    if nh == 0:
        nh, off, out["hop_by_hop"] = outer[off], off + (outer[off + 1] + 1) * 8, True
    if nh == 43 and len(outer) >= off + 8 and outer[off + 2] == 4:
        last = outer[off + 4]
        out.update(sl=outer[off + 3], last_entry=last, flags=f"0x{outer[off + 5]:02x}",
                   tag=f"0x{struct.unpack_from('!H', outer, off + 6)[0]:04x}",
                   srh_len=(outer[off + 1] + 1) * 8,
                   segments=[str(ipaddress.IPv6Address(outer[o:o + 16]))
                             for o in range(off + 8, off + 8 + 16 * (last + 1), 16)
                             if o + 16 <= len(outer)])
    return out


@dataclass
class Srv6Programs:
    """The compiled stamper (``srv6_stamp``) and checker (``srv6_check``)."""

    source: str = field(default_factory=render)
    bpf: Any = None
    fds: dict[str, int] = field(default_factory=dict)

    def load(self) -> "Srv6Programs":
        self.bpf, self.fds = programs.compile_programs(
            "SRv6 testbed programs", self.source,
            {"srv6_stamp": "SCHED_CLS", "srv6_check": "SCHED_CLS"},
        )
        return self

    def configure(self, options: srv6_plan.Srv6Options) -> None:
        """The checker's expected hop limit and HMAC, the stamper's corruption switch."""
        table = self.bpf.get_table(b"srv6_settings")
        value = table.Leaf()
        value.hop_limit = options.expected_hop_limit
        value.hmac = 1 if options.hmac else 0
        value.corrupt = 1 if options.corrupt else 0
        value.nat = 1 if options.nat else 0
        table[table.Key(0)] = value
        self.configure_ioam(options.ioam_check)

    def configure_ioam(self, plan: srv6_ioam.IoamCheck | None) -> None:
        """What the stamper inserts and the checker expects (None: no IOAM)."""
        table = self.bpf.get_table(b"srv6_ioam_settings")
        value = table.Leaf()
        ctypes.memset(ctypes.addressof(value), 0, ctypes.sizeof(value))
        if plan is not None:
            o = plan.options
            value.enabled = 1
            value.hbh_len = len(plan.hbh)
            value.slots = o.slots
            value.node_octets = plan.node_octets
            value.remaining = plan.remaining
            value.writers = len(plan.fillers)
            value.vnf_writer = plan.vnf_index
            value.ts_sec_word, value.ts_frac_word, value.delay_word = (
                off // 4 if off >= 0 else -1 for off in (plan.ts_sec, plan.ts_frac, plan.delay))
            value.vnf_delay = 1 if plan.vnf_delay else 0
            ctypes.memmove(value.head_mask, plan.head_mask, len(plan.head_mask))
            ctypes.memmove(value.hbh, plan.hbh, len(plan.hbh))
            row = 4 * srv6_ioam.MAX_NODE_WORDS
            for k, filler in enumerate(plan.fillers):
                value.writer_outcome[k] = srv6_ioam.IOAM_OUTCOMES.index(filler.role)
                ctypes.memmove(ctypes.addressof(value.expected) + k * row, filler.expected, len(filler.expected))
                ctypes.memmove(ctypes.addressof(value.mask) + k * row, filler.mask, len(filler.mask))
        table[table.Key(0)] = value

    def attach_stamper(self, netns: str, ifname: str) -> None:
        programs.attach_tc(netns, ifname, self.fds["srv6_stamp"], "srv6_stamp", programs.TC_EGRESS)

    def attach_checker(self, netns: str, ifname: str) -> None:
        programs.attach_tc(netns, ifname, self.fds["srv6_check"], "srv6_check", programs.TC_INGRESS)

    # ---- counters --------------------------------------------------------
    def _per_cpu(self, name: bytes, outcomes: tuple[str, ...]) -> dict[str, list[int]]:
        table = self.bpf.get_table(name)
        return {o: [int(x) for x in table[table.Key(i)]] for i, o in enumerate(outcomes)}

    def stamper_counters(self) -> dict[str, int]:
        return {k: sum(v) for k, v in self._per_cpu(b"srv6_stamp_counters", STAMP_OUTCOMES).items()}

    def checker_per_cpu(self) -> dict[str, list[int]]:
        return self._per_cpu(b"srv6_check_counters", CHECK_OUTCOMES)

    def checker_counters(self) -> dict[str, int]:
        return {k: sum(v) for k, v in self.checker_per_cpu().items()}

    def reset(self) -> None:
        """Zero the counters and forget the last mismatch (and the IOAM samples)."""
        for name in (b"srv6_stamp_counters", b"srv6_check_counters", b"srv6_last_mismatch",
                     b"srv6_ioam_insert_counters", b"srv6_ioam_counters", b"srv6_ioam_vnf",
                     b"srv6_ioam_samples"):
            self.bpf.get_table(name).clear()

    # ---- IOAM (--ioam) ----------------------------------------------------
    def ioam_insert_counters(self) -> dict[str, int]:
        return {k: sum(v) for k, v in self._per_cpu(b"srv6_ioam_insert_counters", IOAM_INSERT_OUTCOMES).items()}

    def ioam_per_cpu(self) -> dict[str, list[int]]:
        return self._per_cpu(b"srv6_ioam_counters", srv6_ioam.IOAM_OUTCOMES)

    def ioam_counters(self) -> dict[str, int]:
        return {k: sum(v) for k, v in self.ioam_per_cpu().items()}

    def ioam_vnf_stats(self) -> dict[str, int | float | None]:
        """The VNF host's slot over all CPUs: counts and sums added, minimum and
        maximum over the CPUs that saw some; ``delay_mean_ns``, ``path_mean_ns``."""
        table = self.bpf.get_table(b"srv6_ioam_vnf")
        cpus = list(table[table.Key(0)])
        out: dict[str, int | float | None] = {
            k: sum(getattr(c, k) for c in cpus) for k in IOAM_VNF_STATS if not k.endswith(("_min_ns", "_max_ns"))}
        mins = [c.delay_min_ns for c in cpus if c.delay_available]
        out["delay_min_ns"] = min(mins) if mins else None
        out["delay_max_ns"] = max((c.delay_max_ns for c in cpus), default=0) if mins else None
        out["path_max_ns"] = max((c.path_max_ns for c in cpus), default=0) if out["path_count"] else None
        out["delay_mean_ns"] = (out["delay_sum_ns"] / out["delay_available"]) if out["delay_available"] else None
        out["path_mean_ns"] = (out["path_sum_ns"] / out["path_count"]) if out["path_count"] else None
        return out

    def ioam_view(self) -> dict[str, Any]:
        """Everything IOAM of a run: insertions, outcomes (and ``ok`` per CPU), the
        VNF host's slot statistics, the last trace and the last mismatch (decoded)."""
        out: dict[str, Any] = {"inserted": self.ioam_insert_counters(), "outcomes": self.ioam_counters(),
                               "ok_per_cpu": self.ioam_per_cpu()["ok"], "vnf_slot": self.ioam_vnf_stats()}
        for key, which in (("last_trace", 0), ("last_mismatch", 1)):
            sample = self.ioam_sample(which)
            if sample:
                out[key] = {"outcomes": sample["outcomes"], "seen": sample["seen"],
                            "hbh": sample["hbh"].hex(), "decoded": srv6_ioam.decode_hbh(sample["hbh"])}
        return out

    def ioam_sample(self, which: int = 0) -> dict[str, Any] | None:
        """The newest Hop-by-Hop header the checker kept: which 0, the last checked
        frame's; 1, the last mismatch's. ``hbh`` (bytes), ``outcomes`` that applied,
        ``seen`` (over all CPUs)."""
        table = self.bpf.get_table(b"srv6_ioam_samples")
        cpus = [c for c in table[table.Key(which)] if c.seen]
        if not cpus:
            return None
        newest = max(cpus, key=lambda c: c.ktime)
        return {"hbh": bytes(newest.hbh)[:newest.len], "seen": sum(c.seen for c in cpus),
                "outcomes": [o for i, o in enumerate(srv6_ioam.IOAM_OUTCOMES) if newest.mask & (1 << i)]}

    def last_mismatch(self) -> dict[str, Any] | None:
        table = self.bpf.get_table(b"srv6_last_mismatch")
        s = table[table.Key(0)]
        if not s.seen:
            return None
        outer = bytes(s.outer)[: max(0, min(SAMPLE_BYTES, s.len - 14))]
        sample: dict[str, Any] = {
            "count": int(s.seen), "h": f"0x{s.h:08x}",
            "fields": [k for i, k in enumerate(CHECK_OUTCOMES) if s.mask & (1 << i)],
            "expected": {"tag": f"0x{s.h & 0xFFFF:04x}", "flow_label": f"0x{s.h >> 12:05x}",
                         "payload_len": s.len - 14 - 40},
            "outer": outer.hex(" ", 4),
        }
        with contextlib.suppress(Exception):  # diagnostics only: a cut-short header stays hex
            sample["got"] = decode_sample(outer)
        return sample

    def close(self) -> None:
        if self.bpf is not None:
            with contextlib.suppress(Exception):
                self.bpf.cleanup()
            self.bpf = None
