"""BPF_PROG_TEST_RUN through libbpf's ``bpf_prog_test_run_opts`` (bcc's library).

Runs a loaded program on one packet and returns its verdict, output packet
and output context. Used by the kernel tests and by cost benchmarks. The
context layouts (``struct xdp_md``, the few ``struct __sk_buff`` offsets set
here) are the kernel's uapi, which neither bcc nor libbpf exposes to Python:
they stay declared here.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from sfcframe.bpfsys import call

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
TC_ACT_OK, TC_ACT_SHOT = 0, 2

#: struct __sk_buff as of Linux 6.1 (uapi); only a few fields may be set.
SKB_CTX_SIZE = 192
SKB_MARK_OFFSET = 8
SKB_PRIORITY_OFFSET = 32
SKB_IFINDEX_OFFSET = 40
SKB_GSO_SEGS_OFFSET = 164
SKB_GSO_SIZE_OFFSET = 176
XDP_MD_SIZE = 24


class _TestRunOpts(ctypes.Structure):
    """libbpf's struct bpf_test_run_opts (libbpf 1.x)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class _XdpMd(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_uint32),
        ("data_end", ctypes.c_uint32),
        ("data_meta", ctypes.c_uint32),
        ("ingress_ifindex", ctypes.c_uint32),
        ("rx_queue_index", ctypes.c_uint32),
        ("egress_ifindex", ctypes.c_uint32),
    ]


@dataclass(frozen=True)
class RunResult:
    retval: int
    packet: bytes
    duration_ns: int
    meta: bytes = b""  # XDP: metadata in front of the packet
    mark: int = 0  # TC: skb->mark after the run


class TestRunError(OSError):
    pass


def _run(prog_fd: int, **fields) -> _TestRunOpts:
    """One test run of ``prog_fd``; the options with what the kernel wrote back."""
    opts = _TestRunOpts(sz=ctypes.sizeof(_TestRunOpts), **fields)
    try:
        call("bpf_prog_test_run_opts", prog_fd, ctypes.byref(opts))
        return opts
    except OSError as exc:
        raise TestRunError(exc.errno, f"BPF_PROG_TEST_RUN: {exc.strerror}") from None


def _buffers(packet: bytes, out_size: int):
    data_in = ctypes.create_string_buffer(packet, len(packet))
    data_out = ctypes.create_string_buffer(out_size)
    return data_in, data_out


#: BPF_PROG_TEST_RUN of an skb program refuses (EINVAL) an IPv4 frame shorter than
#: Ethernet + IPv4 header and an IPv6 one shorter than Ethernet + IPv6 header
TC_MIN_FRAME = {0x0800: 14 + 20, 0x86DD: 14 + 40}


def tc_min_frame(frame: bytes) -> int:
    """Shortest prefix of ``frame`` a TC test run accepts (its ethertype decides)."""
    ethertype = int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
    return TC_MIN_FRAME.get(ethertype, 14)


def run_xdp(prog_fd: int, packet: bytes, repeat: int = 1, out_size: int = 65536) -> RunResult:
    """Run an XDP program; the output starts with any metadata it added."""
    data_in, data_out = _buffers(packet, out_size)
    ctx_in = _XdpMd(data=0, data_end=len(packet))
    ctx_out = _XdpMd()
    attr = _run(
        prog_fd,
        data_size_in=len(packet),
        data_size_out=out_size,
        data_in=ctypes.addressof(data_in),
        data_out=ctypes.addressof(data_out),
        repeat=repeat,
        ctx_size_in=ctypes.sizeof(ctx_in),
        ctx_size_out=ctypes.sizeof(ctx_out),
        ctx_in=ctypes.addressof(ctx_in),
        ctx_out=ctypes.addressof(ctx_out),
    )
    raw = data_out.raw[: attr.data_size_out]
    meta_len = ctx_out.data
    return RunResult(attr.retval, raw[meta_len:], attr.duration, meta=raw[:meta_len])


def run_tc(
    prog_fd: int,
    packet: bytes,
    mark: int = 0,
    repeat: int = 1,
    out_size: int = 65536,
    gso_size: int = 0,
    gso_segs: int = 0,
) -> RunResult:
    """Run a SCHED_CLS program on an skb built from ``packet`` (>= 14 bytes);
    ``gso_size``/``gso_segs`` make it look like a GSO skb (gso_type stays 0)."""
    if len(packet) < 14:
        raise ValueError("a TC test run needs at least an Ethernet header (14 bytes)")
    data_in, data_out = _buffers(packet, out_size)
    ctx_in = ctypes.create_string_buffer(SKB_CTX_SIZE)
    ctypes.c_uint32.from_buffer(ctx_in, SKB_MARK_OFFSET).value = mark
    ctypes.c_uint32.from_buffer(ctx_in, SKB_GSO_SEGS_OFFSET).value = gso_segs
    ctypes.c_uint32.from_buffer(ctx_in, SKB_GSO_SIZE_OFFSET).value = gso_size
    ctx_out = ctypes.create_string_buffer(SKB_CTX_SIZE)
    attr = _run(
        prog_fd,
        data_size_in=len(packet),
        data_size_out=out_size,
        data_in=ctypes.addressof(data_in),
        data_out=ctypes.addressof(data_out),
        repeat=repeat,
        ctx_size_in=SKB_CTX_SIZE,
        ctx_size_out=SKB_CTX_SIZE,
        ctx_in=ctypes.addressof(ctx_in),
        ctx_out=ctypes.addressof(ctx_out),
    )
    out_mark = ctypes.c_uint32.from_buffer(ctx_out, SKB_MARK_OFFSET).value
    return RunResult(
        attr.retval, data_out.raw[: attr.data_size_out], attr.duration, mark=out_mark
    )
