"""Per-packet cost of the generated programs, through BPF_PROG_TEST_RUN.

Method (also written into the result file, ``method``):

* **Fresh packets, repeat=1.** ``repeat > 1`` re-runs a program on the same
  buffer, so a modifying path (strip, restore, insert, delete) cannot be timed
  that way. Each row therefore builds ``packets`` distinct frames (distinct
  TCP sequence numbers) per round, runs ingress (XDP) once on each — this
  times insert + strip and creates the entries — then runs egress (TC) once on
  each stripped frame: every egress run is a cache hit (lookup + delete +
  restore). The sample is the duration the kernel reports for that one run
  (ns), not Python's wall time.
* **Floor.** A no-op XDP and a no-op TC program (compiled here with bcc) run
  through the same harness on the same frames, each right next to the real run
  (alternating which goes first). ``net`` is gross minus the floor median of
  the same row and round; the floor holds the test-run timer's own cost and the
  cache misses any program run pays after Python ran in between.
* **Checks.** Counters must show every ingress run ``cached`` (``plain`` for
  0 labels) and every egress run ``restored`` (``plain``), every output frame
  must equal the oracle's, and the cache must be empty after each round.
* **Rounds and slices.** ``rounds`` rounds; within a round every row gets
  ``packets`` packets in slices of ``in_flight`` (ingress on the slice, then
  egress on its stripped frames, so at most ``in_flight`` entries are cached),
  the rows in a random order per slice, so slow phases of the machine hit all
  rows alike. Per-round medians are summarised as median with min–max across
  rounds; pooled samples give p10/p90.
* **Timer resolution.** The step between reported durations is measured from
  the floor samples (``results.timer``). Non-modifying paths (the floors, an
  egress miss) are also timed in batches (``repeat = batch``, the kernel
  reports total/repeat) as a cross-check of what a single run's overhead is.
* **metadata key.** ``carrier=mark``: a TC test run cannot receive XDP
  ``data_meta``, so the id goes to egress in ``skb->mark`` (``ctx_in``), as the
  ``sfc_carrier`` TC-ingress program would hand it over; that program's own
  cost is not part of these rows.
"""

from __future__ import annotations

import gc
import os
import random
import struct
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

from sfcframe.bench import results as R
from sfcframe.bench.rows import (INNER_KINDS, MPLS_DEPTHS, SRV6_SEGMENTS, SRV6_SID, BuildSpec, Row,
                                 mpls_build, mpls_stack, nsh_build, nsh_header, srv6_build,
                                 srv6_header)
from sfcframe.plugin import BenchInner
from sfcframe.testkit.packets import ether, internet_checksum, tcp_ipv4
from sfcframe.testrun import RunResult, run_tc, run_xdp

DEFAULT_PACKETS = 1000
DEFAULT_ROUNDS = 5
DEFAULT_BATCH = 1000
DEFAULT_WARMUP = 200
DEFAULT_PAYLOAD = 64
DEFAULT_IN_FLIGHT = 100
ETH_P_IP = 0x0800

FLOOR_C = r"""
#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>

int sfc_bench_noop_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

int sfc_bench_noop_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* The cache's map operations alone: an LRU hash of the MPLS/tcpip proxy's shape
 * (24-byte key, 40-byte value, 10000 entries); the key is 24 bytes of the IPv4
 * and TCP headers, so fresh packets give fresh keys. Insert then delete leaves
 * the map as it was, so repeat > 1 is valid (and keeps the same key warm). */
struct sfc_bench_key { __u32 w[6]; };
struct sfc_bench_value { __u32 w[10]; };
BPF_TABLE("lru_hash", struct sfc_bench_key, struct sfc_bench_value, sfc_bench_lru, 10000);

int sfc_bench_lru_insert_delete(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct sfc_bench_key key;
	struct sfc_bench_value val = {};

	if (data + 14 + 12 + sizeof(key) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(&key, data + 14 + 12, sizeof(key));
	if (sfc_bench_lru.insert(&key, &val))
		return XDP_DROP;
	sfc_bench_lru.delete(&key);
	return XDP_PASS;
}
"""

#: the stage rows' builds per carrier: encapsulation, its parameters (room for the carrier data)
STAGE_CARRIERS = {
    "ioam": (("nsh", (("max_ioam_bytes", 128),)),
             ("srv6", (("sid", SRV6_SID), ("max_ext_bytes", 128), ("max_segments", 4)))),
    "apn": (("srv6", (("sid", SRV6_SID), ("max_ext_bytes", 64), ("max_segments", 4))),),
}


def _stage_header(encap: str) -> bytes:
    return nsh_header(1) if encap == "nsh" else srv6_header(4)


def stage_rows() -> list[Row]:
    """Every installed stage with :meth:`StagePlugin.bench_cases`, on each
    encapsulation here that offers its first carrier the table knows: the build
    without the stage carrying the first case's data, then one row per case, the
    same packets in the same rounds."""
    from sfcframe import discovery

    loaded, _ = discovery.load_all("stage")
    rows = []
    for stage in sorted(loaded, key=lambda p: p.name):
        cases = list(stage.plugin.bench_cases({}))
        carrier = next((c for c in stage.plugin.carriers if c in STAGE_CARRIERS), None)
        if not cases or carrier is None:
            continue
        for encap, params in STAGE_CARRIERS[carrier]:
            header = _stage_header(encap)
            base = cases[0]
            rows.append(Row(
                f"{encap}-tcpip-{base.carried}", f"{encap} tcpip", BuildSpec(
                    f"{encap}-tcpip-{base.carried}", encap, "tcpip", params),
                base.carried, _embed(encap, dict(params), header, carrier, base.kind, base.body),
                f"{encap} with {base.carried}: carried and restored, no stage"))
            for case in cases:
                label = case.label or stage.name
                settings = ((stage.name, tuple(sorted(case.settings.items()))),)
                rows.append(Row(
                    f"{encap}-tcpip-{label}", f"{encap} tcpip + {stage.name}", BuildSpec(
                        f"{encap}-tcpip-{label}", encap, "tcpip", params + tuple(case.params),
                        stages=(stage.name,), stage_settings=settings),
                    case.carried, _embed(encap, dict(params), header, carrier, case.kind,
                                         case.body),
                    f"{encap} with {case.carried}: {case.what}", compare_frames=False,
                    stage_counters=(stage.name, tuple(case.counters))))
    return rows


def _embed(encap: str, params: dict, header: bytes, carrier: str, kind: int, body: bytes) -> bytes:
    from sfcframe import discovery
    from sfcframe.spec import resolve_spec

    plugin = discovery.load("encap", encap).plugin
    values = resolve_spec(encap, "tcpip", params).encap_params
    return plugin.carrier_embed(carrier, header, kind, body, values)


def _key_group(key: str) -> str:
    return "metadata (mark)" if key == "metadata" else key


#: the keys' rows: (key, its parameters, the inner packets it is measured on), behind
#: MPLS with 10 labels (pop=1). tcpip family=any is the layout the flow keys share;
#: auto runs on every protocol, so that auto-X against X is the dispatch's cost.
KEY_ROWS = (
    ("tcpip", (), ("tcp",)),
    ("tcpip", (("family", "any"),), ("tcp",)),
    ("rtp", (), ("rtp",)),
    ("esp", (), ("esp", "esp_udp")),
    ("icmp", (), ("icmp",)),
    ("udp", (), ("udp",)),
    ("auto", (), ("tcp", "rtp", "esp", "esp_udp", "icmp", "udp")),
)


def key_rows() -> list[Row]:
    """The per-key rows (ids ``key-<key>[-<family>]-<inner>``)."""
    rows = []
    for key, extra, inners in KEY_ROWS:
        tag = key + "".join(f"-{v}" for _, v in extra)
        build = BuildSpec(f"mpls-{tag}", "mpls", key, (("max_labels", 10), ("pop", 1), *extra))
        for inner in inners:
            rows.append(Row(f"key-{tag}-{inner}", "keys", build, inner, mpls_stack(10),
                            f"key {tag}, {INNER_KINDS[inner]}, 10 labels (pop=1)", inner=inner))
    return rows


def default_rows() -> list[Row]:
    rows: list[Row] = []
    # the tcpip key on its default cache (the LRU hash map) and on the assoc table, the
    # metadata key on its ring: the same rounds, so their ratios are comparisons within one run
    for key, cache in (("tcpip", None), ("tcpip", "assoc"), ("metadata", None)):
        build = mpls_build(key, cache=cache)
        label = f"{key}-{cache}" if cache else key
        group = f"mpls {_key_group(key)}" + (f" ({cache})" if cache else "")
        for depth in MPLS_DEPTHS:
            what = "plain frame (plain-tracking path)" if depth == 0 else (
                f"{depth} label(s), {max(depth - 1, 0)} restored (pop=1)")
            rows.append(Row(f"mpls-{label}-L{depth}", group, build, str(depth),
                            mpls_stack(depth), what))
    build = mpls_build("tcpip", pop=0)
    for depth in MPLS_DEPTHS[1:]:
        rows.append(Row(f"mpls-tcpip-pop0-L{depth}", "mpls tcpip pop=0", build, str(depth),
                        mpls_stack(depth), f"{depth} label(s), all {depth} restored (pop=0)"))
    for key in ("tcpip", "metadata"):
        build = nsh_build(key)
        for md in (1, 2):
            hdr = nsh_header(md)
            rows.append(Row(f"nsh-{key}-md{md}", f"nsh {_key_group(key)}", build, f"MD{md}",
                            hdr, f"NSH MD type {md}, {len(hdr)}-byte header, SI 254 -> 253"))
    rows += stage_rows()
    for key in ("tcpip", "metadata"):
        build = srv6_build(key)
        for segments in SRV6_SEGMENTS:
            hdr = srv6_header(segments)
            rows.append(Row(f"srv6-{key}-S{segments}", f"srv6 {_key_group(key)}", build,
                            str(segments), hdr, f"SRv6 End.AD, {segments} segment(s), "
                            f"{len(hdr)}-byte outer headers cached and restored"))
    return rows


# ---- packets -----------------------------------------------------------------


class PacketFactory:
    """Distinct IPv4/TCP packets (fresh sequence numbers), built from one template."""

    def __init__(self, payload: int = DEFAULT_PAYLOAD):
        self.template = bytearray(tcp_ipv4(seq=0, payload=bytes(payload)))
        self.ihl = (self.template[0] & 0x0F) * 4
        self.next_seq = 1

    def take(self, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            pkt = bytearray(self.template)
            struct.pack_into("!I", pkt, self.ihl + 4, self.next_seq & 0xFFFFFFFF)
            self.next_seq += 1
            seg = pkt[self.ihl:]
            seg[16:18] = b"\0\0"
            pseudo = bytes(pkt[12:20]) + struct.pack("!BBH", 0, 6, len(seg))
            struct.pack_into("!H", pkt, self.ihl + 16, internet_checksum(pseudo + bytes(seg)))
            out.append(bytes(pkt))
        return out


class FlowPacketFactory:
    """Distinct packets of one flow key protocol: the key's template
    (:class:`~sfcframe.plugin.BenchInner`) with its counted fields (RTP sequence
    number and timestamp, ESP sequence number, echo sequence number, the first
    UDP payload word) counted up. Checksums are left as built: the programs do
    not check them, and the template's fields still differ per packet."""

    def __init__(self, inner: BenchInner):
        self.template = inner.template
        self.fields = inner.counted
        self.next = 1

    def take(self, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            pkt = bytearray(self.template)
            for offset, fmt in self.fields:
                struct.pack_into(fmt, pkt, offset, self.next % (1 << (8 * struct.calcsize(fmt))))
            self.next += 1
            out.append(bytes(pkt))
        return out


#: the key whose :meth:`~sfcframe.plugin.KeyPlugin.bench_inners` offers each inner kind
#: but TCP (the benchmark's own :class:`PacketFactory`)
INNER_SOURCES = {"rtp": "rtp", "esp": "esp", "esp_udp": "esp", "icmp": "icmp", "udp": "udp"}


def factories(payload: int) -> dict[str, Any]:
    """One packet factory per inner kind."""
    from sfcframe.spec import resolve_spec

    out: dict[str, Any] = {"tcp": PacketFactory(payload)}
    for kind, key in INNER_SOURCES.items():
        spec = resolve_spec("mpls", key)
        out[kind] = FlowPacketFactory(spec.key.plugin.bench_inners(spec.key_params, payload)[kind])
    return out


# ---- loaded builds -------------------------------------------------------------


class LoadedBuild:
    """A row's build (possibly a variant) loaded through the test kit's driver
    (:class:`~sfcframe.testkit.kernel.KernelProxy`), with what the rows need on top:
    their frames, what the oracle expects of them, the mark egress gets."""

    def __init__(self, spec: BuildSpec):
        from sfcframe.testkit.kernel import KernelProxy

        self.spec = spec
        self.proxy = KernelProxy(spec.encap, spec.key, spec.params_dict(), spec.stages,
                                 variant=spec.switches)
        self.resolved = self.proxy.spec
        #: the programs' fds: timed single runs go through testrun like the floors'
        self.fd_in = self.proxy.module.fds["sfc_ingress"]
        self.fd_eg = self.proxy.module.fds["sfc_egress"]
        for stage, settings in spec.stage_settings:
            self.proxy.set_stage_settings(stage, dict(settings))

    def mark_for(self, ingress: RunResult) -> int:
        return self.resolved.key.plugin.carry_to_egress(ingress.meta, self.resolved.key_params)

    def frame(self, header: bytes, inner: bytes) -> bytes:
        """The frame a row sends: ``header`` in front of ``inner`` (lengths filled in by
        the encapsulation), or the plain inner packet."""
        if not header:
            return ether(ETH_P_IP) + inner
        plugin = self.resolved.encap.plugin
        ethertype, payload = plugin.encapsulate(header, inner, self.resolved.encap_params)
        return ether(ethertype) + payload

    def expected(self, header: bytes, inner: bytes) -> tuple[str, bytes, str, bytes]:
        """(ingress outcome, stripped frame, egress outcome, restored frame) per the oracle."""
        if not header:
            plain = ether(ETH_P_IP) + inner
            return "plain", plain, "plain", plain
        plugin = self.resolved.encap.plugin
        values = self.resolved.encap_params
        frame = self.frame(header, inner)
        parse = plugin.reference_ingress(frame[14:], values, ethertype=plugin.ethertypes(values)[0])
        if parse.outcome != "ok":
            raise RuntimeError(f"bench header is not accepted by the oracle: {parse.outcome}")
        stripped = ether(parse.inner_ethertype) + inner
        status, restored = plugin.reference_restore(parse.cached, values, inner)
        if status != "ok":
            raise RuntimeError(f"bench header does not restore per the oracle: {status}")
        if not restored:
            return "cached", stripped, "restored", stripped
        restored = plugin.reference_fixup(restored, inner, values)
        return "cached", stripped, "restored", frame[:14] + restored + inner

    def close(self) -> None:
        self.proxy.close()


class Floors:
    """The no-op XDP and TC programs every row is compared with."""

    def __init__(self):
        from sfcframe.loader import _capture_fd2, bcc_module, require_root

        require_root()
        bcc = bcc_module()
        with _capture_fd2():
            self.bpf = bcc.BPF(text=FLOOR_C.encode())
        self.xdp = self.bpf.load_func(b"sfc_bench_noop_xdp", bcc.BPF.XDP).fd
        self.tc = self.bpf.load_func(b"sfc_bench_noop_tc", bcc.BPF.SCHED_CLS).fd
        self.lru_pair = self.bpf.load_func(b"sfc_bench_lru_insert_delete", bcc.BPF.XDP).fd

    def close(self) -> None:
        self.bpf.cleanup()


# ---- one row, one round ----------------------------------------------------------


@dataclass
class RowRound:
    samples: dict[str, list[int]] = field(default_factory=dict)
    floor: dict[str, list[int]] = field(default_factory=dict)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    mismatches: int = 0
    leftover_entries: int = 0
    problems: list[str] = field(default_factory=list)

    def extend(self, other: "RowRound") -> None:
        """Append another slice of the same row and round."""
        for mine, theirs in ((self.samples, other.samples), (self.floor, other.floor)):
            for d, values in theirs.items():
                mine.setdefault(d, []).extend(values)
        for d, counts in other.counters.items():
            into = self.counters.setdefault(d, {})
            for name, v in counts.items():
                into[name] = into.get(name, 0) + v
        self.mismatches += other.mismatches
        self.leftover_entries += other.leftover_entries
        self.problems.extend(other.problems)


def _pair(run: Callable[[int], RunResult], prog_fd: int, floor_fd: int,
          floor_first: bool) -> tuple[RunResult, int]:
    """``run`` on the program and on its floor, in the given order: the program's
    result and the floor's duration (ns). Both go through the same Python code
    right before the kernel runs them, so that the floor holds the same cache
    disturbance; a longer path in front of the program alone (the driver's
    ``ingress()``) measurably raised the net figures."""
    if floor_first:
        floor = run(floor_fd).duration_ns
        result = run(prog_fd)
    else:
        result = run(prog_fd)
        floor = run(floor_fd).duration_ns
    return result, floor


def measure_row(row: Row, build: LoadedBuild, floors: Floors, inners: Sequence[bytes]) -> RowRound:
    out = RowRound()
    frames = [build.frame(row.header, inner) for inner in inners]
    expects = [build.expected(row.header, inner) for inner in inners] if row.check else []
    before = build.proxy.counters()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        ing, ing_floor, stripped, marks = [], [], [], []
        for i, frm in enumerate(frames):
            size = len(frm) + 512
            result, floor = _pair(lambda fd: run_xdp(fd, frm, out_size=size),
                                  build.fd_in, floors.xdp, bool(i & 1))
            ing.append(result.duration_ns)
            ing_floor.append(floor)
            stripped.append(result.packet)
            marks.append(build.mark_for(result))
            if row.check and row.compare_frames and result.packet != expects[i][1]:
                out.mismatches += 1
        out.samples["ingress"], out.floor["ingress"] = ing, ing_floor
        if "egress" in row.directions:
            eg, eg_floor = [], []
            for i, (frm, mark) in enumerate(zip(stripped, marks)):
                size = len(frm) + 512
                result, floor = _pair(lambda fd: run_tc(fd, frm, mark=mark, out_size=size),
                                      build.fd_eg, floors.tc, bool(i & 1))
                eg.append(result.duration_ns)
                eg_floor.append(floor)
                if row.check and row.compare_frames and result.packet != expects[i][3]:
                    out.mismatches += 1
            out.samples["egress"], out.floor["egress"] = eg, eg_floor
    finally:
        if gc_was:
            gc.enable()
    after = build.proxy.counters()
    out.counters = {
        d: {n: after[d][n] - before[d][n] for n in after[d] if after[d][n] - before[d][n]}
        for d in after
    }
    out.leftover_entries = build.proxy.cache_count()
    if out.leftover_entries:
        build.proxy.clear_cache()
    if row.check:
        n = len(inners)
        want_in, want_eg = expects[0][0], expects[0][2]
        if out.counters["ingress"] != {want_in: n}:
            out.problems.append(f"ingress counters {out.counters['ingress']}, expected {want_in}={n}")
        if "egress" in row.directions and out.counters["egress"] != {want_eg: n}:
            out.problems.append(f"egress counters {out.counters['egress']}, expected {want_eg}={n}")
        if row.stage_counters and "egress" in row.directions:
            stage, names = row.stage_counters
            moved = out.counters.get(stage, {})
            if moved != {name: n for name in names}:
                out.problems.append(f"stage {stage} counters {moved}, expected "
                                    f"{', '.join(f'{c}={n}' for c in names) or 'none'}")
        if out.mismatches:
            out.problems.append(f"{out.mismatches} output frame(s) differ from the oracle")
        if out.leftover_entries and "egress" in row.directions:
            out.problems.append(f"{out.leftover_entries} cache entries left after egress")
    return out


# ---- batched cross-checks (non-modifying paths) -------------------------------------


def batched(run: Callable[[], RunResult], times: int) -> list[int]:
    return [run().duration_ns for _ in range(times)]


def calibration(build: LoadedBuild, floors: Floors, factory: PacketFactory, packets: int,
                batch: int, rounds: int) -> dict[str, Any]:
    """Single-run vs batched timing of paths a re-run does not change.

    ``lru_insert_delete``: the cache's two map operations alone (insert, then
    delete, on an LRU hash of the proxy's key and value sizes): the map returns
    to its state, so batches are valid; it bounds what any hash-map cache costs.

    ``egress_miss``: the tcpip egress program on stripped frames that have no
    cache entry (key derivation + lookup miss + counter): nothing in the packet
    changes, so ``repeat`` is valid. Comparing its repeat=1 and batched figures
    shows how much of a single run is cold caches rather than the program.
    """
    inners = factory.take(packets)
    frame = ether(ETH_P_IP) + inners[0]
    enc = ether(0x8847) + mpls_stack(10) + inners[0]
    single_miss, single_floor = [], []
    for i, inner in enumerate(inners):
        frm = ether(ETH_P_IP) + inner
        result, floor = _pair(lambda fd: run_tc(fd, frm, out_size=len(frm) + 512),
                              build.fd_eg, floors.tc, bool(i & 1))
        single_miss.append(result.duration_ns)
        single_floor.append(floor)
    single_pair, single_xdp_floor = [], []
    for i, inner in enumerate(inners):
        frm = ether(ETH_P_IP) + inner
        result, floor = _pair(lambda fd: run_xdp(fd, frm, out_size=len(frm) + 512),
                              floors.lru_pair, floors.xdp, bool(i & 1))
        if result.retval != 2:  # XDP_PASS: inserted and deleted
            raise RuntimeError(f"LRU insert+delete probe returned {result.retval}")
        single_pair.append(result.duration_ns)
        single_xdp_floor.append(floor)
    before = build.proxy.counters()["egress"]["not_cached"]
    batched_runs = {
        "noop_xdp": batched(lambda: run_xdp(floors.xdp, enc, repeat=batch), rounds),
        "noop_tc": batched(lambda: run_tc(floors.tc, frame, repeat=batch), rounds),
        "egress_miss": batched(lambda: build.proxy.egress(frame, repeat=batch), rounds),
        "lru_insert_delete": batched(lambda: run_xdp(floors.lru_pair, frame, repeat=batch),
                                     rounds),
    }
    misses = build.proxy.counters()["egress"]["not_cached"] - before
    single = {
        "egress_miss": R.summarize(single_miss),
        "noop_tc": R.summarize(single_floor),
        "lru_insert_delete": R.summarize(single_pair),
        "noop_xdp": R.summarize(single_xdp_floor),
    }
    return {
        "build": build.spec.name,
        "batch_repeat": batch,
        "batched_ns_per_run": {k: R.across_rounds(v) for k, v in batched_runs.items()},
        "single_run_ns": single,
        "egress_miss_net": {
            "single_run": R._round(single["egress_miss"]["median"] - single["noop_tc"]["median"]),
            "batched": R._round(R.median(batched_runs["egress_miss"])
                                - R.median(batched_runs["noop_tc"])),
        },
        "lru_insert_delete_net": {
            "single_run": R._round(single["lru_insert_delete"]["median"]
                                   - single["noop_xdp"]["median"]),
            "batched": R._round(R.median(batched_runs["lru_insert_delete"])
                                - R.median(batched_runs["noop_xdp"])),
            "what": "sfc_bench_lru_insert_delete: one insert (BPF_NOEXIST) and one delete "
                    "on an LRU hash of the MPLS/tcpip cache's shape, nothing else",
        },
        "batched_miss_runs_counted": misses,
        "note": "batched = one BPF_PROG_TEST_RUN with repeat=batch_repeat on one frame; the "
                "kernel reports total time / repeat. Valid only for paths that leave the "
                "packet and the cache as they were (no-op programs, an egress miss).",
    }


# ---- the whole benchmark -----------------------------------------------------------


def _aggregate(row: Row, rounds: list[RowRound]) -> dict[str, Any]:
    directions = {}
    for d in row.directions:
        gross_rounds = [r.samples[d] for r in rounds]
        floor_rounds = [r.floor[d] for r in rounds]
        floor_medians = [R.median(f) for f in floor_rounds]
        net_pooled = [s - fm for g, fm in zip(gross_rounds, floor_medians) for s in g]
        counters: dict[str, int] = {}
        for r in rounds:
            for name, v in r.counters.get(d, {}).items():
                counters[name] = counters.get(name, 0) + v
        directions[d] = {
            "program": "sfc_ingress (XDP)" if d == "ingress" else "sfc_egress (TC)",
            "samples_ns": gross_rounds,
            "floor_samples_ns": floor_rounds,
            "gross": {
                "per_round_median": R.across_rounds([R.median(g) for g in gross_rounds]),
                "pooled": R.summarize(s for g in gross_rounds for s in g),
            },
            "floor": {
                "per_round_median": R.across_rounds(floor_medians),
                "pooled": R.summarize(s for f in floor_rounds for s in f),
            },
            "net": {
                "per_round_median": R.across_rounds(
                    [R.median(g) - fm for g, fm in zip(gross_rounds, floor_medians)]),
                "pooled": R.summarize(net_pooled),
            },
            "counters": counters,
        }
    return {
        **row.as_dict(),
        "packets": [len(r.samples[row.directions[0]]) for r in rounds],
        "mismatches": sum(r.mismatches for r in rounds),
        "leftover_entries": sum(r.leftover_entries for r in rounds),
        "problems": [p for r in rounds for p in r.problems],
        "directions": directions,
    }


def _net(rows: dict[str, dict], row_id: str, direction: str) -> dict | None:
    row = rows.get(row_id)
    if row is None or direction not in row["directions"]:
        return None
    return row["directions"][direction]["net"]["per_round_median"]


def _ratio(a: dict, b: dict) -> dict:
    per_round = [x / y if y else float("inf") for x, y in zip(a["rounds"], b["rounds"])]
    return {
        "median": round(R.median(per_round), 3),
        "min": round(min(per_round), 3),
        "max": round(max(per_round), 3),
        "rounds": [round(v, 3) for v in per_round],
    }


def targets(rows: dict[str, dict]) -> list[dict]:
    out = []
    for key_group, prefix in (("tcpip, pop=1 (default)", "mpls-tcpip"),
                              ("tcpip, pop=0", "mpls-tcpip-pop0"),
                              ("metadata (mark), pop=1", "mpls-metadata")):
        a, b = _net(rows, f"{prefix}-L10", "egress"), _net(rows, f"{prefix}-L1", "egress")
        if a and b:
            ratio = _ratio(a, b)
            note = ("with pop=1 a 1-label stack restores nothing (the label is popped), so "
                    "this compares a restore with no restore" if "pop=1" in key_group else
                    "1 label restores 4 bytes, 10 labels 40 bytes")
            out.append(R.target(f"egress flat in stack depth, MPLS {key_group}",
                                "net(10 labels) <= 1.1 x net(1 label)",
                                {"ratio": ratio, "net_10_ns": a, "net_1_ns": b},
                                ratio["median"] <= 1.1, note))
    # with pop=1 the restore itself against depth: 1 label restored (2 stamped) vs 9 (10)
    for key_group, prefix in (("tcpip, pop=1", "mpls-tcpip"), ("metadata (ring), pop=1",
                                                              "mpls-metadata")):
        a, b = _net(rows, f"{prefix}-L10", "egress"), _net(rows, f"{prefix}-L2", "egress")
        if a and b:
            ratio = _ratio(a, b)
            out.append(R.target(f"egress flat in restored depth, MPLS {key_group}",
                                "net(10 labels: 9 restored) <= 1.1 x net(2 labels: 1 restored)",
                                {"ratio": ratio, "net_10_ns": a, "net_2_ns": b},
                                ratio["median"] <= 1.1))
    # issue 12: the tcpip key on its assoc table against the LRU hash map, same rounds
    for direction, limit in (("ingress", 0.5), ("egress", 0.6)):
        a, b = _net(rows, "mpls-tcpip-assoc-L10", direction), _net(rows, "mpls-tcpip-L10", direction)
        if a and b:
            ratio = _ratio(a, b)
            out.append(R.target(
                f"{direction} net cost, MPLS tcpip 10 labels: cache=assoc vs cache=lru",
                f"<= {limit} x the lru row (same run)",
                {"ratio": ratio, "assoc_ns": a, "lru_ns": b}, ratio["median"] <= limit,
                "median of the per-round ratios"))
    # absolute budgets of an earlier issue, per key and cache
    for key, cache, prefix in (("tcpip", "lru", "mpls-tcpip-L"),
                               ("tcpip", "assoc", "mpls-tcpip-assoc-L"),
                               ("metadata", "ring", "mpls-metadata-L")):
        ingress = {rid: _net(rows, rid, "ingress") for rid in rows
                   if rid.startswith(prefix) and _net(rows, rid, "ingress")}
        if ingress:
            worst = max(ingress, key=lambda rid: ingress[rid]["median"])
            out.append(R.target(f"ingress net cost, MPLS {key} (cache={cache})",
                                "<= 250 ns/packet (every depth)",
                                {"worst_row": worst, "net_ns": ingress[worst],
                                 "by_row": {k: v["median"] for k, v in ingress.items()}},
                                ingress[worst]["median"] <= 250))
        eg10 = _net(rows, f"{prefix}10", "egress")
        if eg10:
            out.append(R.target(f"egress net cost at 10 labels, MPLS {key} (cache={cache})",
                                "<= 350 ns/packet", {"net_ns": eg10}, eg10["median"] <= 350))
    return out


def auto_overhead(rows: dict[str, dict]) -> list[dict]:
    """The auto key's dispatch against the single key for the same packets: net(auto)
    - net(key) per direction, median of the per-round differences (the rows ran in
    the same rounds, on the same kind of packets)."""
    single = {"tcp": "key-tcpip-any-tcp", "rtp": "key-rtp-rtp", "esp": "key-esp-esp",
              "esp_udp": "key-esp-esp_udp", "icmp": "key-icmp-icmp", "udp": "key-udp-udp"}
    out = []
    for inner, base in single.items():
        entry: dict[str, Any] = {"inner": inner, "auto_row": f"key-auto-{inner}", "single_row": base}
        for d in ("ingress", "egress"):
            a, b = _net(rows, f"key-auto-{inner}", d), _net(rows, base, d)
            if not a or not b:
                break
            diffs = [x - y for x, y in zip(a["rounds"], b["rounds"])]
            entry[d] = {"auto_ns": a["median"], "single_ns": b["median"],
                        "overhead_ns": R.across_rounds(diffs)}
        else:
            out.append(entry)
    return out


def method_text(packets: int, rounds: int, warmup: int, batch: int,
                in_flight: int) -> dict[str, Any]:
    doc = (__doc__ or "").split("Method (also written into the result file, ``method``):", 1)[-1]
    return {
        "summary": " ".join(doc.split()),
        "sample": "kernel-reported duration of one BPF_PROG_TEST_RUN with repeat=1 (ns)",
        "net": "gross sample minus the median no-op floor of the same row and round",
        "packets_per_row_per_round": packets,
        "rounds": rounds,
        "warmup_packets_per_row": warmup,
        "in_flight": f"a round runs each row in slices of {in_flight} packets (ingress on the "
                     "slice, then egress on its stripped frames, so at most that many entries "
                     "are cached), rows in a random order per slice (parameters.seed)",
        "batch_repeat": batch,
        "egress_frames": "each ingress output frame, as stripped by the proxy itself",
        "metadata_key": "carrier=mark; egress gets the id in skb->mark via ctx_in "
                        "(BPF_PROG_TEST_RUN cannot hand data_meta to a TC program); the "
                        "sfc_carrier TC-ingress program is not timed",
        "cpu_pinning": "the harness pins itself to one CPU (parameters.cpu)",
    }


def _loadavg() -> str | None:
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return None


def with_cache_size(row: Row, cache_size: int) -> Row:
    """The row with its build's cache_size set."""
    params = {**row.build.params_dict(), "cache_size": cache_size}
    return replace(row, build=replace(row.build, params=tuple(params.items())))


def run_cost(packets: int = DEFAULT_PACKETS, rounds: int = DEFAULT_ROUNDS,
             batch: int = DEFAULT_BATCH, warmup: int = DEFAULT_WARMUP,
             payload: int = DEFAULT_PAYLOAD, cpu: int | None = None,
             in_flight: int = DEFAULT_IN_FLIGHT, seed: int = 1,
             rows: Iterable[Row] | None = None, breakdown: bool = False,
             progress: Callable[[str], None] | None = None,
             cache_size: int | None = None) -> dict[str, Any]:
    """Run the cost benchmark and return its result document (not written).
    ``cache_size``: every build's cache_size (None: each build's default)."""
    from sfcframe.bench import machine

    say = progress or (lambda _msg: None)
    rows = list(rows) if rows is not None else default_rows()
    if breakdown:
        from sfcframe.bench.breakdown import breakdown_rows

        rows += breakdown_rows()
    if cache_size is not None:
        rows = [with_cache_size(row, cache_size) for row in rows]
    if cpu is None:
        cpu = max(os.sched_getaffinity(0))
    saved_affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    factory = PacketFactory(payload)
    inner_factories = {**factories(payload), "tcp": factory}
    builds: dict[str, LoadedBuild] = {}
    floors = Floors()
    try:
        for row in rows:
            if row.build.name not in builds:
                say(f"compiling {row.build.name}")
                builds[row.build.name] = LoadedBuild(row.build)
        say(f"warm-up: {warmup} packets per row")
        for row in rows:
            for left in range(warmup, 0, -in_flight):
                measure_row(row, builds[row.build.name], floors,
                            inner_factories[row.inner].take(min(in_flight, left)))
        per_row: dict[str, list[RowRound]] = {row.id: [] for row in rows}
        rng = random.Random(seed)
        for r in range(rounds):
            say(f"round {r + 1}/{rounds}: {len(rows)} rows x {packets} packets "
                f"in slices of {in_flight}")
            records = {row.id: RowRound() for row in rows}
            left = packets
            while left > 0:
                k = min(in_flight, left)
                order = list(rows)
                rng.shuffle(order)
                for row in order:
                    records[row.id].extend(measure_row(
                        row, builds[row.build.name], floors, inner_factories[row.inner].take(k)))
                left -= k
            for row in rows:
                per_row[row.id].append(records[row.id])
        calib_build = builds.get("mpls-tcpip") or LoadedBuild(mpls_build("tcpip"))
        builds["mpls-tcpip"] = calib_build
        say("batched cross-checks")
        calib = calibration(calib_build, floors, factory, packets, batch, rounds)
        instructions = {name: b.proxy.module.instructions for name, b in builds.items()}
    finally:
        os.sched_setaffinity(0, saved_affinity)
        floors.close()
        for b in builds.values():
            b.close()

    aggregated = [_aggregate(row, per_row[row.id]) for row in rows]
    by_id = {a["id"]: a for a in aggregated if a["kind"] == "row"}
    floor_all = {"xdp": [], "tc": []}
    floor_round_medians = {"xdp": [], "tc": []}
    for r in range(rounds):
        for prog, direction in (("xdp", "ingress"), ("tc", "egress")):
            pool = [s for row in rows if direction in row.directions
                    for s in per_row[row.id][r].floor[direction]]
            floor_all[prog] += pool
            floor_round_medians[prog].append(R.median(pool))
    floors_doc = {
        prog: {
            "program": "sfc_bench_noop_xdp" if prog == "xdp" else "sfc_bench_noop_tc",
            "source": FLOOR_C.strip(),
            "per_round_median": R.across_rounds(floor_round_medians[prog]),
            "pooled": R.summarize(floor_all[prog]),
        }
        for prog in ("xdp", "tc")
    }
    resolution = R.observed_resolution(floor_all["xdp"] + floor_all["tc"])
    problems = {a["id"]: a["problems"] for a in aggregated if a["problems"]}
    results = {
        "rows": [a for a in aggregated if a["kind"] == "row"],
        "breakdown": [a for a in aggregated if a["kind"] != "row"],
        "floors": floors_doc,
        "calibration": calib,
        "timer": {
            "observed_resolution_ns": resolution,
            "note": "most frequent step between distinct single-run durations (values 1 ns "
                    "apart merged); medians of thousands of samples are still quantised "
                    "to about this step, means are not",
        },
        "instructions": instructions,
        "problems": problems,
        "auto_overhead": auto_overhead(by_id),
        "loadavg_end": _loadavg(),
    }
    parameters = {
        "packets": packets, "rounds": rounds, "batch_repeat": batch, "warmup": warmup,
        "payload_bytes": payload, "cpu": cpu, "breakdown": breakdown,
        "in_flight": in_flight, "seed": seed, "cache_size": cache_size,
        "rows": [row.id for row in rows],
    }
    doc = R.document("cost", parameters, method_text(packets, rounds, warmup, batch, in_flight),
                     results, targets(by_id), machine.describe())
    if breakdown:
        from sfcframe.bench.breakdown import compare

        results["comparison"] = compare(doc)
    return doc
