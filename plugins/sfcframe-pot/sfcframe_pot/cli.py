"""``sfcframe pot``: profiles and verification (entry point ``sfcframe.commands``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sfcframe.errors import SfcError, UsageError

EPILOG = """\
examples:
  sfcframe pot profile --nodes 2 --out pot/      # pot/profile.json, pot/node-1.settings, ...
  sfcframe set vnf1 --from pot/node-2.settings   # node 2's share, on the proxy
  tcpdump -i eth0 -w chain-end.pcap ip6
  sfcframe pot verify --profile pot/profile.json --pcap chain-end.pcap
"""


class VerificationFailed(SfcError):
    """Packets failed verification (the counts were printed)."""

    exit_code = 1


def add_parser(sub) -> None:
    pot = sub.add_parser(
        "pot", help="proof of transit: make profiles, verify captured packets",
        description="Proof of transit (sfcframe-pot): Shamir profiles for a path of N "
        "updating nodes, and verification of the POT options of captured packets at the "
        "chain end (CML == SECRET + RND mod 2^61-1).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = pot.add_subparsers(dest="pot_command", metavar="ACTION", required=True)

    prof = what.add_parser(
        "profile", help="generate a consistent profile (secret, shares, public values, LPCs)",
        description="Generate a profile for NODES updating nodes: OUT/profile.json holds "
        "everything (the verifier's file: the secret); OUT/node-<i>.settings holds node i's "
        "stage settings for `sfcframe set NAME --from FILE`. All files mode 0600; nothing "
        "secret is printed.")
    prof.add_argument("--nodes", type=int, required=True, help="updating nodes on the path (1..64)")
    prof.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write")
    prof.add_argument("--namespace", type=lambda t: int(t, 0), default=0,
                      help="IOAM Namespace-ID (default 0)")
    prof.add_argument("--profile-index", type=int, choices=(0, 1), default=0,
                      help="which of the two profiles (the POT flag selects) this is")
    prof.add_argument("--stage", default="pot", help="the stage's name in the builds (default pot)")
    prof.add_argument("--json", action="store_true", help="machine-readable summary (no secrets)")
    prof.set_defaults(handler=_profile)

    ver = what.add_parser(
        "verify", help="verify the POT options of packets in a pcap",
        description="Check every captured packet's POT option against the profile: each "
        "frame counts once as verified, failed, replayed (its RND seen before), "
        "other_profile, other_namespace, unknown_type, no_pot or malformed. Exit 0 when "
        "packets verified and none failed or was replayed, 1 otherwise.")
    ver.add_argument("--profile", type=Path, required=True, help="profile.json (holds the secret)")
    ver.add_argument("--pcap", type=Path, required=True, help="capture at the chain end")
    ver.add_argument("--json", action="store_true", help="machine-readable report")
    ver.set_defaults(handler=_verify)


def _profile(args: argparse.Namespace) -> int:
    from sfcframe_pot import profile

    try:
        made = profile.generate(args.nodes, namespace=args.namespace, index=args.profile_index)
        files = profile.write(made, args.out, args.stage)
    except ValueError as exc:
        raise UsageError(f"pot profile: {exc}") from None
    except OSError as exc:
        raise UsageError(f"pot profile: {args.out}: {exc.strerror}") from None
    summary = {"nodes": len(made.nodes), "prime": made.prime, "namespace": made.namespace,
               "profile": made.index, "files": [str(f) for f in files]}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"profile {made.index} for {len(made.nodes)} nodes (namespace {made.namespace}, "
              f"prime 2^61-1) written, mode 0600:")
        for f in files:
            print(f"  {f}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from sfcframe_pot import profile, verify

    try:
        report = verify.verify_pcap(args.pcap, profile.load(args.profile))
    except ValueError as exc:
        raise UsageError(f"pot verify: {exc}") from None
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("  ".join(f"{k} {v}" for k, v in report.counts.items()))
        for number, outcome, rnd, cml in report.failures:
            print(f"  frame {number}: {outcome} (RND {rnd:#018x}, CML {cml:#018x})")
    if not report.ok:
        if args.json:
            return VerificationFailed.exit_code
        raise VerificationFailed(
            f"pot verify: {report.counts['verified']} verified, {report.counts['failed']} "
            f"failed, {report.counts['replayed']} replayed")
    return 0
