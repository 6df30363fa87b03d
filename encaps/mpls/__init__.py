"""SR-MPLS label stacks (ethertype 0x8847).

Ingress checks, in this order (``mpls.c.j2`` and :meth:`MplsEncap.reference_ingress`
alike): a label cut off by the end of the frame is ``malformed``; no bottom-of-stack
bit within ``max_labels`` labels is ``too_deep``; a stack of fewer labels than ``pop``
(shallower than the labels addressed to this function) is ``too_shallow`` (policy
strict: passed unmodified, dropped in strict mode; in both modes); no byte behind the
stack is ``malformed``; an IP version other than 4 or 6 behind it is
``unsupported_inner``.
"""

from __future__ import annotations

from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.outcomes import Outcome
from sfcframe.params import Param
from sfcframe.plugin import ETH_P_IP, ETH_P_IPV6, EncapParse, EncapPlugin

ETH_P_MPLS_UC = 0x8847
LABEL_BYTES = 4
MAX_LABELS_LIMIT = 32


class MplsEncap(EncapPlugin):
    contract = 2
    description = "SR-MPLS label stack (ethertype 0x8847); restores all but the popped labels"
    template = "mpls.c.j2"
    demo_template = "demo.c.j2"
    ethertype = ETH_P_MPLS_UC
    params = (
        Param("max_labels", "int", 10, "deepest label stack parsed and cached", 1, MAX_LABELS_LIMIT),
        Param(
            "pop",
            "int",
            1,
            "topmost labels not restored at egress (the label addressing this SF)",
            0,
            MAX_LABELS_LIMIT,
        ),
    )

    def validate(self, values: Mapping[str, Any]) -> None:
        if values["pop"] > values["max_labels"]:
            raise ParamError(
                f"encap mpls: pop={values['pop']} exceeds max_labels={values['max_labels']}"
            )

    def header_capacity(self, values: Mapping[str, Any]) -> int:
        return LABEL_BYTES * (values["max_labels"] - values["pop"])

    def ingress_outcomes(self, values: Mapping[str, Any]) -> list[Outcome]:
        return [
            Outcome("too_shallow", "strict", "fewer labels than pop: the stack is not "
                    "addressed to this function (never with pop=0)"),
        ]

    def max_strip(self, values: Mapping[str, Any]) -> int:
        return LABEL_BYTES * values["max_labels"]

    # ---- test oracle -------------------------------------------------
    def inner_ethertypes(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        return (ETH_P_IP, ETH_P_IPV6)

    def reference_ingress(self, l2_payload: bytes, values: Mapping[str, Any],
                          ethertype: int | None = None) -> EncapParse:
        words = []
        for i in range(values["max_labels"]):
            word = l2_payload[LABEL_BYTES * i : LABEL_BYTES * (i + 1)]
            if len(word) < LABEL_BYTES:
                return EncapParse("malformed")
            words.append(word)
            if word[2] & 0x01:  # bottom of stack
                break
        else:
            return EncapParse("too_deep")
        depth = len(words)
        if depth < values["pop"]:
            return EncapParse("too_shallow")
        inner = l2_payload[LABEL_BYTES * depth : LABEL_BYTES * depth + 1]
        if not inner:
            return EncapParse("malformed")
        version = inner[0] >> 4
        if version not in (4, 6):
            return EncapParse("unsupported_inner")
        return EncapParse(
            "ok",
            strip_len=LABEL_BYTES * depth,
            inner_ethertype=ETH_P_IP if version == 4 else ETH_P_IPV6,
            cached=b"".join(words[values["pop"] :]),
        )

    def reference_restore(self, cached: bytes, values: Mapping[str, Any],
                          inner: bytes = b"") -> tuple[str, bytes]:
        return "ok", cached

    def describe_header(self, header: bytes, values: Mapping[str, Any]) -> str:
        """Labels topmost first, each ``label/tc/ttl`` with ``/S`` on the bottom one:
        ``1001/tc1/ttl63 1002/tc2/ttl62/S``."""
        parts = []
        for i in range(0, len(header) - len(header) % LABEL_BYTES, LABEL_BYTES):
            word = int.from_bytes(header[i:i + LABEL_BYTES], "big")
            parts.append(f"{word >> 12}/tc{(word >> 9) & 7}/ttl{word & 0xFF}"
                         + ("/S" if word & 0x100 else ""))
        if len(header) % LABEL_BYTES:
            parts.append("+" + header[len(header) - len(header) % LABEL_BYTES:].hex())
        return " ".join(parts) or "(no labels: every label was popped)"

    def static_header(self, text: str, values: Mapping[str, Any]) -> bytes:
        """A label list, topmost first: ``100,200,300`` or ``100 200 300`` (TC 0,
        TTL 64, the S bit on the last). Hex bytes are accepted too (``0x...`` or
        ``hex:...``): whole 4-byte labels, the bottom-of-stack bit on the last
        label and on no other. An empty label (``100,,200``) is refused."""
        import re

        text = text.strip()
        if text.lower().startswith(("0x", "hex:")):
            header = super().static_header(text[4:] if text.lower().startswith("hex:") else text,
                                           values)
            if len(header) % LABEL_BYTES:
                raise ParamError(
                    f"encap mpls: static header {text!r}: {len(header)} bytes is not a "
                    "whole number of 4-byte labels"
                )
            words = [header[i : i + LABEL_BYTES] for i in range(0, len(header), LABEL_BYTES)]
            bottom = [i for i, w in enumerate(words) if w[2] & 0x01]
            if words and bottom != [len(words) - 1]:
                raise ParamError(
                    f"encap mpls: static header {text!r}: the bottom-of-stack bit must be set "
                    f"on the last label and no other (set on label(s) {bottom or 'none'})"
                )
            labels = len(words)
        else:
            parts = re.split(r"\s*,\s*|\s+", text)
            labels = len(parts)
            header = b""
            for i, part in enumerate(parts):
                if not part:
                    raise ParamError(
                        f"encap mpls: static header {text!r}: empty label at position {i + 1} "
                        "(expected a list like 100,200,300)"
                    )
                try:
                    label = int(part, 0)
                except ValueError:
                    raise ParamError(
                        f"encap mpls: static header {text!r}: {part!r} is not a label "
                        "(expected a list like 100,200,300)"
                    ) from None
                if not 0 <= label <= (1 << 20) - 1:
                    raise ParamError(
                        f"encap mpls: static header label {label} is outside 0..{(1 << 20) - 1}"
                    )
                bos = 0x100 if i == labels - 1 else 0
                header += ((label << 12) | bos | 64).to_bytes(4, "big")
        if labels > values["max_labels"]:
            raise ParamError(
                f"encap mpls: static header has {labels} labels, more than "
                f"max_labels={values['max_labels']}"
            )
        return header

    def example_header(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP) -> bytes:
        from sfcframe.encaps.mpls.scapy_layers import label_stack

        depth = min(3, values["max_labels"])
        return label_stack([(1000 + i, i % 8, 64 - i) for i in range(depth)])

    def bench_header(self, values: Mapping[str, Any], size: int,
                     inner_ethertype: int = ETH_P_IP) -> bytes:
        """``size`` labels (1000, 1001, ...; TC 0, TTL 64), bottom of stack on the last."""
        from sfcframe.encaps.mpls.scapy_layers import label_stack

        if not 1 <= size <= values["max_labels"]:
            raise ValueError(f"mpls: {size} labels, the build holds 1..{values['max_labels']}")
        return label_stack([(1000 + i, 0, 64) for i in range(size)])

    def header_strategy(self, values: Mapping[str, Any], inner_ethertype: int = ETH_P_IP):
        from hypothesis import strategies as st

        from sfcframe.encaps.mpls.scapy_layers import label_stack

        entry = st.tuples(
            st.integers(0, (1 << 20) - 1), st.integers(0, 7), st.integers(0, 255)
        )
        return st.lists(entry, min_size=1, max_size=values["max_labels"]).map(label_stack)
