"""Generated C for each built-in combination equals its checked-in golden copy.

The golden copy is the compilation unit bcc loads, ``sfc_proxy.c``
(tests/golden/<build>/sfc_proxy.c): the header and both programs in one text.
The split files a build also writes (``sfc_proxy.h``, ``sfc_ingress.c``,
``sfc_egress.c``) have no golden copy of their own; a test holds them to be
exactly the unit's parts, in order, so a golden diff shows every change once.

Regenerate after an intended change with:
    SFCFRAME_REGEN_GOLDEN=1 bash scripts/test.sh tests/test_golden.py
then review the diff like any other code change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sfcframe.composer import MAIN_FILE, render
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


#: the parts of the unit, in the order it includes them
SPLIT_FILES = ("sfc_proxy.h", "sfc_ingress.c", "sfc_egress.c")
INCLUDE_HEADER = '#include "sfc_proxy.h"'


def _rendered(name: str) -> dict[str, str]:
    encap, key, params = BUILDS[name]
    return render(resolve_spec(encap, key, params)).files


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_generated_code_matches_golden(name):
    text = _rendered(name)[MAIN_FILE]
    directory = GOLDEN / name
    if REGENERATE:
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        (directory / MAIN_FILE).write_text(text)
    on_disk = {p.name: p.read_text() for p in sorted(directory.iterdir())} if directory.is_dir() else {}
    assert set(on_disk) == {MAIN_FILE}, (
        f"golden copy of {name}: expected {MAIN_FILE} alone, found {sorted(on_disk)}; "
        "set SFCFRAME_REGEN_GOLDEN=1")
    assert text == on_disk[MAIN_FILE], (
        f"{name}/{MAIN_FILE} differs from its golden copy; if intended, regenerate with "
        "SFCFRAME_REGEN_GOLDEN=1 and review the diff"
    )


def _comment_end(lines: list[str], start: int = 0) -> int:
    """Index just past the block comment that starts at ``lines[start]`` or after."""
    return lines.index(" */", start) + 1


def _code_lines(lines: list[str]) -> list[str]:
    """The lines that are not blank (the unit and its parts space them apart differently)."""
    return [line for line in lines if line.strip()]


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_split_files_are_the_units_parts(name):
    """Each split file is its banner, then (the programs) ``#include "sfc_proxy.h"``,
    then its body; the unit is the same banner, a comment of its own, then the
    header's, the ingress program's and the egress program's bodies in that order."""
    files = _rendered(name)
    assert set(files) == {MAIN_FILE, *SPLIT_FILES}
    unit = files[MAIN_FILE].splitlines()
    banner = unit[:_comment_end(unit)]
    unit_body = unit[_comment_end(unit, len(banner)):]
    parts: list[str] = []
    for file in SPLIT_FILES:
        lines = files[file].splitlines()
        assert lines[:len(banner)] == banner, f"{name}/{file} starts with another banner"
        body = lines[len(banner):]
        if file != "sfc_proxy.h":
            assert INCLUDE_HEADER in body, f"{name}/{file} does not include the header"
            body.remove(INCLUDE_HEADER)
        parts += body
    assert _code_lines(parts) == _code_lines(unit_body), (
        f"{name}: {MAIN_FILE} is not {' + '.join(SPLIT_FILES)}")
