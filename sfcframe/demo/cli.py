"""The ``sfcframe demo`` subcommand (registered by sfcframe/cli.py)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys

from sfcframe.errors import KernelFeatureError

EPILOG = """\
examples:
  sfcframe demo                                  # 10 MPLS labels, forwarding VNF, tcpip key, 10 s
  sfcframe demo --vnf nat --seconds 5            # in-kernel NAT: key auto picks metadata
  sfcframe demo --encap nsh --md-type 2 --vnf delay
  sfcframe demo --vnf delay --cache-size 64      # a cache below Little's law: misses
  sfcframe demo --json
  sfcframe demo --encap srv6 --sf end            # the kernel's SRv6 as SFF, End stand-in and receiver
  sfcframe demo --encap srv6 --inner ipv6 --hmac # End.DT6, HMAC required at the receiving node
  sfcframe demo --encap srv6 --sf end --ioam     # + kernel IOAM routers around the VNF host
  sfcframe demo --encap srv6 --ioam --stage ioam # the proxy's IOAM stage fills the VNF host's
                                                 # node data between kernel IOAM nodes; dwell time
  sfcframe demo --encap nsh --stage ioam         # NSH + RFC 9452 IOAM trace; dwell time

exit code: 0 PASS (no header mismatch at the receiver, traffic flowed, and no egress
miss behind a forward/nat VNF), 1 FAIL, 2 bad usage, 130 interrupted; everything the
demo created is removed in every case.
"""

TOOLS = ("ip", "ethtool", "iperf3", "taskset", "ss", "sysctl")


def add_demo_parser(sub, help: str | None = None) -> argparse.ArgumentParser:
    """Register ``demo`` on an ``add_subparsers()`` object; ``help`` is its line in
    the list of subcommands."""
    from sfcframe.coreflags import add_core_flags, add_param_flag

    demo = sub.add_parser(
        "demo",
        help=help,
        description=(
            "The embedded default: namespaces sender - SFF - VNF host - receiver joined by veth.\n"
            "The SFF stamps every forwarded packet with a per-packet encapsulation (MPLS: a stack\n"
            "whose bottom label comes from the packet; NSH: per-packet context headers), the proxy\n"
            "runs on both VNF interfaces (started with the runtime, as `sfcframe up` does), and\n"
            "the receiver checks that every packet carries exactly the header its sender stamped,\n"
            "after the proxy's update rule (MPLS: minus the popped labels; NSH: SI - 1). With\n"
            "--stage ioam (nsh, srv6) a pre-allocated IOAM trace rides along, the proxy's stage\n"
            "fills the function's node data and the summary reports its dwell time. Needs root."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--encap", default="mpls",
                      help="encapsulation: mpls (default), nsh, or srv6 (the kernel's SRv6 as peer)")
    demo.add_argument("--labels", type=int, default=10, help="MPLS labels stamped (0..32, default 10)")
    demo.add_argument("--md-type", type=int, choices=(1, 2), default=1,
                      help="NSH metadata type stamped (default 1)")
    demo.add_argument("--vnf", choices=("forward", "drop", "nat", "delay"), default="forward",
                      help="the legacy VNF behind the proxy (default forward)")
    demo.add_argument("--key", choices=("tcpip", "metadata", "rtp", "esp", "icmp", "udp", "auto"),
                      default="auto",
                      help="proxy key; auto (default): metadata for nat, tcpip for TCP traffic, "
                      "the auto key (per-packet derivation by protocol) for any other traffic")
    demo.add_argument("--traffic", choices=("tcp", "udp", "rtp", "esp", "icmp", "udpsame", "mixed"),
                      default="tcp",
                      help="what the sender sends, each packet stamped and checked: tcp (iperf3, "
                      "default), udp (iperf3 -u -b 0), rtp (--rtp-streams RTP streams), esp "
                      "(AES-GCM ESP, raw and UDP-encapsulated), icmp (ping -f), udpsame (one datagram "
                      "repeated unchanged: the udp key's worst case), mixed (all but udpsame)")
    demo.add_argument("--rtp-streams", type=int, default=50,
                      help="--traffic rtp/mixed: RTP streams (default 50, 50 packets/s each)")
    demo.add_argument("--rate-pps", type=int, default=None, metavar="N",
                      help="--traffic rtp/esp/udpsame: packets per second in all (default: rtp 50 "
                      "per stream, esp as fast as the sender goes)")
    demo.add_argument("--seconds", type=float, default=10, help="traffic duration (default 10)")
    demo.add_argument("--streams", type=int, default=2,
                      help="TCP streams, each pinned to one CPU in turn (default 2)")
    demo.add_argument("--chains", type=int, choices=(1, 2), default=1,
                      help="sender/receiver pairs with different stacks through the VNF")
    add_core_flags(demo, helps={
        "ingress": "the proxy's ingress hook: tc (the demo's default: the fastest on this "
        "veth testbed, whose peers send no GSO frames) or xdp (native XDP)"})
    add_param_flag(demo, help="proxy parameter (repeatable), e.g. pop=2")
    demo.add_argument("--stage", action="append", default=[], metavar="STAGE",
                      help="metadata stage of the proxy, as `sfcframe build/up --stage` "
                      "(repeatable). ioam (nsh, srv6 with the proxy): implies --ioam; the "
                      "proxy's stage fills the VNF host's node data, its settings written "
                      "through the runtime as `sfcframe set NAME ioam.node_id=0x5fc002 ...` "
                      "does (node 2: node id 0x5fc002, in0 0x201, out0 0x202, namespace data "
                      "0xda7a0002, namespace 0x8fc0); the checker holds that node data to them "
                      "on every packet and its transit delay to a plausible range (srv6: "
                      "available and within t1 -> t2; nsh: 1 ns .. 1 s, timestamps within the "
                      "last second); the summary prints the function's dwell time: the "
                      "checker's mean/min/max of that transit delay and the proxy's own "
                      "ioam_dwell_ns histogram, p50/p90/p99")
    demo.add_argument("--delay-ms", type=float, default=3.0, help="delay VNF hold time (default 3)")
    srv6 = demo.add_argument_group(
        "srv6", "--encap srv6: the kernel encapsulates (H.Encaps) at the SFF and decapsulates "
        "(End.DX4 / End.DT6) at a node before the receiver; stamper and checker only write and "
        "check the per-packet Tag and flow label and the SRv6 fields")
    srv6.add_argument("--inner", choices=("ipv4", "ipv6"), default="ipv4",
                      help="inner packets: ipv4 (End.DX4, default) or ipv6 (End.DT6)")
    srv6.add_argument("--hmac", action="store_true",
                      help="the SFF adds an HMAC TLV (ip sr hmac), the decapsulating node requires it")
    srv6.add_argument("--sf", choices=("auto", "end", "proxy"), default="auto",
                      help="what owns SID_PROXY on the VNF host: end (the kernel's seg6local End, "
                      "no proxy), proxy (sfcframe's srv6 proxy around a forwarding VNF), auto "
                      "(default: proxy when an srv6 encapsulation plugin is installed, else end)")
    srv6.add_argument("--hop-limit", type=int, default=None,
                      help="outer hop limit the checker expects (default 62: H.Encaps' 64, minus "
                      "the SFF's and the VNF host's forwarding)")
    ioam = demo.add_argument_group(
        "ioam", "IOAM trace options (RFC 9197), pre-allocated traces: --encap srv6 (Hop-by-Hop "
        "option 49, RFC 9486, between kernel IOAM routers; SRV6-TESTBED.md) and --encap nsh (an "
        "IOAM header behind NSH, RFC 9452, written and read by the demo's own programs: no kernel "
        "writes IOAM over NSH). --stage ioam turns the trace on by itself")
    ioam.add_argument("--ioam", action="store_true",
                      help="the SFF's stamper puts a pre-allocated IOAM trace on every packet "
                      "(srv6: after H.Encaps, with kernel IOAM routers t1 and t2 before and after "
                      "the VNF host; nsh: NSH next protocol 6 with the SFF's own node data in the "
                      "last slot) and the checker checks every writer's node data")
    ioam.add_argument("--ioam-trace-type", type=lambda text: int(text, 0), default=None,
                      metavar="BITS", help="IOAM-Trace-Type (srv6: bits 0-11 and 22; nsh: bits "
                      "0-11; default 0xfc0000: hop limit and node id, interface ids, timestamps, "
                      "transit delay, namespace data)")
    ioam.add_argument("--ioam-slots", type=int, default=None, metavar="N",
                      help="node data slots the stamper pre-allocates (srv6 default 4: t1, the VNF "
                      "host, t2, the decapsulating node; nsh default 3: the SFF's, the VNF host's, "
                      "one left free)")
    ioam.add_argument("--ioam-vnf", choices=("auto", "kernel", "proxy", "none"), default="auto",
                      help="who the checker expects to fill the VNF host's slot: kernel (srv6: the "
                      "End stand-in), proxy (the proxy's ioam stage; without --stage ioam: a run "
                      "that fails, the control), none (nobody: the trace passes the VNF host "
                      "untouched), auto (default: kernel with --sf end, proxy with --stage ioam, "
                      "else none)")
    demo.add_argument("--self-test", action="store_true",
                      help="no VNF and no proxy: check the stamper and the checker alone")
    demo.add_argument("-j", "--json", action="store_true", help="print the summary as JSON")
    return demo


def run(args: argparse.Namespace) -> int:
    from sfcframe.coreflags import merge
    from sfcframe.demo.report import progress_line
    from sfcframe.demo.run import DemoConfig, run_demo

    if os.geteuid() != 0:
        raise KernelFeatureError("sfcframe demo needs root (namespaces, BPF, iptables)")
    tools = list(TOOLS) + (["iptables"] if args.vnf in ("drop", "nat") else [])
    tools += ["ping"] if args.encap == "srv6" else []
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise KernelFeatureError(
            f"sfcframe demo needs {', '.join(missing)} (scripts/setup.sh installs them)"
        )
    params = merge(dict(args.param), args, "demo")  # core flags as the proxy's parameters
    for name in ("cache_size", "ingress"):  # DemoConfig fields of their own
        if getattr(args, name) is not None:
            params.pop(name)
    cfg = DemoConfig(
        encap=args.encap, labels=args.labels, md_type=args.md_type,
        vnf="none" if args.self_test else args.vnf, key=args.key, seconds=args.seconds,
        streams=args.streams, chains=args.chains,
        cache_size=args.cache_size, params=params, delay_ms=args.delay_ms,
        ingress=args.ingress or "tc",
        inner=args.inner, hmac=args.hmac, hop_limit=args.hop_limit,
        ioam=args.ioam or args.ioam_trace_type is not None, ioam_trace_type=args.ioam_trace_type,
        ioam_slots=args.ioam_slots, ioam_vnf=args.ioam_vnf, stages=list(args.stage),
        sf="end" if args.self_test else args.sf,
        traffic=args.traffic, rtp_streams=args.rtp_streams, rate_pps=args.rate_pps,
    )
    out = sys.stderr if args.json else sys.stdout

    def progress(snap) -> None:
        print(progress_line(snap), file=out, flush=True)

    owner = os.getpid()

    def on_term(signum, frame):  # noqa: ARG001 - SIGTERM ends the run like Ctrl-C
        if os.getpid() != owner:  # a forked helper (pyroute2) being stopped: just die
            os._exit(128 + signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        summary = run_demo(cfg, progress=progress, say=lambda line: print(line, file=out, flush=True))
    except KeyboardInterrupt:
        print("sfcframe demo: interrupted; the testbed and the proxy were removed", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
    else:
        print(summary.text())
    return 0 if summary.passed else 1
