"""Generated C for each built-in combination equals the checked-in golden files.

Regenerate after an intended change with:
    SFCFRAME_REGEN_GOLDEN=1 bash scripts/test.sh tests/test_golden.py
then review the diff like any other code change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sfcframe.composer import render
from sfcframe.spec import resolve_spec

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("SFCFRAME_REGEN_GOLDEN") == "1"

BUILDS = {
    "mpls-tcpip": ("mpls", "tcpip", {}),
    "mpls-tcpip-assoc": ("mpls", "tcpip", {"cache": "assoc"}),
    "mpls-metadata": ("mpls", "metadata", {}),
    "mpls-metadata-mark": ("mpls", "metadata", {"carrier": "mark"}),
    "nsh-tcpip": ("nsh", "tcpip", {}),
    "nsh-metadata": ("nsh", "metadata", {}),
    "mpls-tcpip-tc": ("mpls", "tcpip", {"ingress": "tc"}),
    "mpls-metadata-tc": ("mpls", "metadata", {"ingress": "tc"}),
    "mpls-static": ("mpls", "tcpip", {"mode": "static", "static_header": "100,200,300"}),
    "srv6-tcpip": ("srv6", "tcpip", {"sid": "fc00::a,fc00::b"}),
    "srv6-tcpip-ipv6": ("srv6", "tcpip", {"sid": "fc00::a", "family": "ipv6"}),
    "mpls-tcpip-any-tc": ("mpls", "tcpip", {"family": "any", "ingress": "tc"}),
    # the flow keys: auto composes every derivation (rtp, esp, icmp, udp alone are subsets)
    "mpls-auto": ("mpls", "auto", {}),
    "srv6-rtp-tc": ("srv6", "rtp", {"sid": "fc00::a", "ingress": "tc"}),
    "srv6-metadata-wide": ("srv6", "metadata", {"sid": "fc00::a", "max_segments": 16,
                                                "max_ext_bytes": 16, "ingress": "tc"}),
}


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_generated_code_matches_golden(name):
    encap, key, params = BUILDS[name]
    files = render(resolve_spec(encap, key, params)).files
    directory = GOLDEN / name
    if REGENERATE:
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        for file, text in files.items():
            (directory / file).write_text(text)
    on_disk = {p.name: p.read_text() for p in sorted(directory.iterdir())} if directory.is_dir() else {}
    assert set(on_disk) == set(files), f"golden files for {name} missing: set SFCFRAME_REGEN_GOLDEN=1"
    for file, text in files.items():
        assert text == on_disk[file], (
            f"{name}/{file} differs from its golden copy; if intended, regenerate with "
            "SFCFRAME_REGEN_GOLDEN=1 and review the diff"
        )

