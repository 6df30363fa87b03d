"""What the cost benchmark measures: builds, rows and the headers they send.

Shared by the row tables (:mod:`sfcframe.bench.cost`) and the variant builds
(:mod:`sfcframe.bench.breakdown`). Headers come from each encapsulation's
:meth:`~sfcframe.plugin.EncapPlugin.bench_header`: the benchmark knows sizes
(labels, MD types, segments), not wire formats.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sfcframe.composer import VARIANT_SWITCHES


@dataclass(frozen=True)
class BuildSpec:
    name: str
    encap: str
    key: str
    params: tuple[tuple[str, Any], ...]
    #: variant switches of the templates (sfcframe.composer.VARIANT_SWITCHES), none for
    #: the real programs
    switches: tuple[str, ...] = ()
    description: str = ""
    stages: tuple[str, ...] = ()
    #: runtime settings written into the stages' settings maps: ((stage, ((name, value), ...)), ...)
    stage_settings: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()

    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class Row:
    id: str
    group: str  # plot series
    build: BuildSpec
    x: str  # plot category: "0".."10", "MD1", "MD2"
    header: bytes  # encapsulation on the wire; b"" = a plain frame
    description: str
    directions: tuple[str, ...] = ("ingress", "egress")
    check: bool = True  # expect every run to hit; compare frames with the oracle
    kind: str = "row"  # "row" | "component" | "candidate" | "reference"
    #: compare output frames too (not for stage rows: their node data holds times; the
    #: test kit checks those bytes, here the counters are checked)
    compare_frames: bool = True
    #: stage rows: (stage, the counters every packet moves once each in a round trip)
    stage_counters: tuple[str, tuple[str, ...]] | None = None
    #: the inner packets it sends (INNER_KINDS): IPv4/TCP, or the flow keys' protocols
    inner: str = "tcp"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "kind": self.kind,
            "x": self.x,
            "encap": self.build.encap,
            "key": self.build.key,
            "params": self.build.params_dict(),
            "build": self.build.name,
            "stages": list(self.build.stages),
            "edits": [VARIANT_SWITCHES[s] for s in self.build.switches],
            "header_bytes": len(self.header),
            "header_hex": self.header.hex(),
            "description": self.description,
            "inner": self.inner,
        }


@functools.lru_cache(maxsize=None)
def encap_header(encap: str, size: int, params: tuple[tuple[str, Any], ...] = ()) -> bytes:
    """The encapsulation's own benchmark header of ``size``
    (:meth:`~sfcframe.plugin.EncapPlugin.bench_header`) for a build with ``params``."""
    from sfcframe.spec import resolve_spec

    spec = resolve_spec(encap, "tcpip", dict(params))
    return spec.encap.plugin.bench_header(spec.encap_params, size)


def mpls_stack(depth: int) -> bytes:
    """``depth`` MPLS labels; 0: none (a plain frame)."""
    return encap_header("mpls", depth, (("max_labels", depth),)) if depth else b""


def nsh_header(md_type: int) -> bytes:
    """NSH of MD type 1 or 2 (two 4-byte TLVs: 16 bytes of metadata, max_md_bytes' default)."""
    return encap_header("nsh", md_type, (("max_md_bytes", 16),))


MPLS_DEPTHS = (0, 1, 2, 5, 10)


def mpls_build(key: str, pop: int = 1, max_labels: int = 10, name: str | None = None,
               switches: tuple[str, ...] = (), description: str = "",
               cache: str | None = None) -> BuildSpec:
    """The MPLS proxy with ``key``; ``cache`` names a cache kind other than the key's
    default (and the build: ``mpls-tcpip-assoc``)."""
    params: list[tuple[str, Any]] = [("max_labels", max_labels), ("pop", pop)]
    if key == "metadata":
        params.append(("carrier", "mark"))
    if cache:
        params.append(("cache", cache))
    base = f"mpls-{key}" + ("" if pop == 1 else f"-pop{pop}") + (f"-{cache}" if cache else "")
    return BuildSpec(name or base, "mpls", key, tuple(params), switches, description)


def nsh_build(key: str, max_md_bytes: int = 16) -> BuildSpec:
    params: list[tuple[str, Any]] = [("max_md_bytes", max_md_bytes)]
    if key == "metadata":
        params.append(("carrier", "mark"))
    return BuildSpec(f"nsh-{key}", "nsh", key, tuple(params))


SRV6_SEGMENTS = (1, 4, 8, 16)
#: the SID of the SRv6 rows' proxy
SRV6_SID = "fc00::a"


def srv6_build(key: str) -> BuildSpec:
    """One build for every SRv6 depth: up to 16 segments (a wide, 368-byte entry)."""
    params: list[tuple[str, Any]] = [("sid", SRV6_SID), ("max_segments", max(SRV6_SEGMENTS))]
    if key == "metadata":
        params.append(("carrier", "mark"))
    return BuildSpec(f"srv6-{key}", "srv6", key, tuple(params))


def srv6_header(segments: int) -> bytes:
    """H.Encaps with ``segments`` segments, the rows' SID active with one segment left
    after it, no TLVs; the payload length is filled in per packet."""
    return encap_header("srv6", segments, (("sid", SRV6_SID), ("max_segments", max(SRV6_SEGMENTS))))


#: inner packet kinds of the rows, and what each is
INNER_KINDS = {
    "tcp": "IPv4/TCP",
    "rtp": "IPv4/UDP/RTP",
    "esp": "IPv4/ESP (AES-GCM)",
    "esp_udp": "IPv4/UDP/ESP (port 4500)",
    "icmp": "IPv4/ICMP echo request",
    "udp": "IPv4/UDP",
}
