"""The encap x key combinations every kernel test runs over."""

from __future__ import annotations

import pytest

#: the SRv6 proxy's SID in the kernel tests
SID = "fc00::a"

#: (encap, key, params) — metadata round trips use the mark carrier because
#: BPF_PROG_TEST_RUN cannot hand XDP metadata to a TC program.
COMBOS = [
    ("mpls", "tcpip", {}),
    ("mpls", "metadata", {"carrier": "mark"}),
    ("nsh", "tcpip", {"max_md_bytes": 64}),
    ("nsh", "metadata", {"carrier": "mark", "max_md_bytes": 64}),
    # ingress=tc: the same properties with the ingress program on TC (metadata:
    # the ingress program writes skb->mark itself, the carrier defaults to mark)
    ("mpls", "tcpip", {"ingress": "tc"}),
    ("mpls", "metadata", {"ingress": "tc"}),
    ("nsh", "tcpip", {"ingress": "tc", "max_md_bytes": 64}),
    ("nsh", "metadata", {"ingress": "tc", "max_md_bytes": 64}),
    # the metadata key defaults to cache=ring; its LRU hash map path too
    ("mpls", "metadata", {"carrier": "mark", "cache": "lru"}),
    # SRv6 End.AD: IPv4 inner packets for tcpip, IPv4 and IPv6 for metadata; the
    # last one a wide entry (more than 252 header bytes) behind two SIDs
    ("srv6", "tcpip", {"sid": SID}),
    ("srv6", "metadata", {"sid": SID, "carrier": "mark"}),
    ("srv6", "tcpip", {"sid": SID, "ingress": "tc"}),
    ("srv6", "metadata", {"sid": f"fc00::b,{SID}", "ingress": "tc", "max_segments": 16,
                          "max_ext_bytes": 16}),
    # the tcpip key over IPv6/TCP: family=ipv6 behind SRv6 (XDP), family=any (IPv4 and
    # IPv6 in one key) behind SRv6 with TC ingress and behind MPLS (which carries IPv6 too)
    ("srv6", "tcpip", {"sid": SID, "family": "ipv6"}),
    ("srv6", "tcpip", {"sid": SID, "family": "any", "ingress": "tc"}),
    ("mpls", "tcpip", {"family": "any"}),
    # the tcpip key's caches: the lines above use its default, cache=assoc (the
    # two-choice table); the same properties on the LRU hash map, and the assoc table
    # under another key (it takes any key by value)
    ("mpls", "tcpip", {"cache": "lru"}),
    ("nsh", "tcpip", {"ingress": "tc", "max_md_bytes": 64, "cache": "lru"}),
    ("srv6", "tcpip", {"sid": SID, "family": "ipv6", "cache": "lru"}),
    ("mpls", "metadata", {"carrier": "mark", "cache": "assoc"}),
]


def combo_id(combo) -> str:
    encap, key, params = combo
    extra = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{encap}-{key}" + (f"[{extra}]" if extra else "")


def parametrize_combos(fn):
    return pytest.mark.parametrize("combo", COMBOS, ids=[combo_id(c) for c in COMBOS])(fn)


def in_pass(harness) -> int:
    """The ingress program's pass verdict (XDP_PASS, or TC_ACT_OK with ingress=tc)."""
    return harness.oracle._in_pass


def in_drop(harness) -> int:
    """The ingress program's drop verdict (XDP_DROP, or TC_ACT_SHOT with ingress=tc)."""
    return harness.oracle._in_drop
