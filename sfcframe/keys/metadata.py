"""The kernel-mode key: a per-packet id carried in kernel packet metadata.

Ingress draws an id no other in-flight packet holds: the next number of one
sequence shared by every CPU (an atomic add), so ids are consecutive across
CPUs and the core can keep the cache in a ring indexed by the id
(``cache=ring``, the default with this key; :attr:`ring_capable`). The cache entry is
stored under that id, and the id travels with the packet through the kernel
(paper, section IV-B.1), so a VNF running in the kernel may rewrite anything
in the packet (NAT) and egress still finds the entry. The inner packet is
never parsed: any IPv4 or IPv6 packet gets an id (UDP, ICMP, fragments).
A user-space VNF loses the metadata; use the ``tcpip`` key there.

How the id reaches TC egress is the parameter ``carrier``:

``data_meta`` (default)
    XDP grows the metadata area by :data:`META_LEN` bytes with
    ``bpf_xdp_adjust_meta`` and writes ``struct sfc_meta`` (magic, flags, id;
    host byte order) at its start, followed by :data:`META_GUARD` unused
    bytes: a forwarding kernel writes the new Ethernet header as an aligned
    16-byte block (``neigh_hh_output``, HH_DATA_MOD) and so overwrites the
    2 bytes in front of it. TC egress reads ``skb->data_meta`` before it
    grows the packet. Needs a driver (or generic XDP) that keeps XDP metadata.

``mark``
    XDP still writes ``struct sfc_meta``; an extra TC-ingress program
    (``sfc_carrier``) moves it into ``skb->mark``: bit 31 ours, bit 30 plain,
    bits 0..29 the id (so ids are drawn to fit 30 bits). Egress reads and
    clears the mark. The VNF must leave ``skb->mark`` alone, and the id must
    not cross a network namespace (that clears the mark).

Plain packets (no encapsulation) are flagged in the carrier, not in the cache
map (:attr:`plain_in_carrier`).
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from sfcframe.errors import ParamError
from sfcframe.params import Param
from sfcframe.plugin import KeyPlugin, ProgramSpec

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD

#: struct sfc_meta { __u32 magic; __u32 flags; __u64 id; } in host byte order
META_FORMAT = "=IIQ"
META_SIZE = struct.calcsize(META_FORMAT)
#: unused bytes between struct sfc_meta and the packet (overwritten on forwarding)
META_GUARD = 4
#: bytes ingress adds in front of the packet
META_LEN = META_SIZE + META_GUARD
META_MAGIC = 0x5FC0DA7A
META_FLAG_PLAIN = 0x1

#: skb->mark layout of carrier=mark
MARK_OURS = 1 << 31
MARK_PLAIN = 1 << 30
MARK_ID = (1 << 30) - 1

#: bits of the id per carrier (the sequence wraps there)
ID_BITS = {"data_meta": 48, "mark": 30}

#: outcomes of the sfc_carrier program, in counter-index order
CARRIER_OUTCOMES = ("copied", "absent")
CARRIER_COUNTERS = "sfc_carrier_counters"


class MetadataKey(KeyPlugin):
    contract = 2
    description = (
        "per-packet id in kernel packet metadata (XDP data_meta or skb->mark): "
        "for kernel-mode VNFs, survives NAT, any IPv4/IPv6 inner packet"
    )
    template = "metadata.c.j2"
    params = (
        Param(
            "carrier",
            "choice",
            "data_meta",
            "how the id travels from XDP ingress to TC egress: data_meta (XDP metadata) "
            "or mark (skb->mark, set by an extra TC-ingress program)",
            choices=("data_meta", "mark"),
        ),
    )
    plain_in_carrier = True
    survives_nat = True
    ring_capable = True

    def inner_ethertypes(self, values: Mapping[str, Any]) -> tuple[int, ...]:
        return (ETH_P_IP, ETH_P_IPV6)

    def extra_programs(self, values: Mapping[str, Any],
                       core: Mapping[str, Any]) -> list[ProgramSpec]:
        """carrier=mark behind XDP ingress: sfc_carrier moves the id into skb->mark.
        A TC ingress program writes skb->mark itself: no extra program."""
        if values["carrier"] == "mark" and core.get("ingress") != "tc":
            return [ProgramSpec("sfc_carrier", "sched_cls", "tc-ingress", source="metadata")]
        return []

    def extra_counters(self, values: Mapping[str, Any],
                       core: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        """Per-CPU counter maps of this key's own programs: {map name: outcome names}."""
        if self.extra_programs(values, core):
            return {CARRIER_COUNTERS: CARRIER_OUTCOMES}
        return {}

    # ---- ingress=tc: the ingress program writes skb->mark itself -------
    def core_defaults(self, core: Mapping[str, Any]) -> dict[str, Any]:
        """With ``ingress=tc`` there is no XDP data_meta: the carrier defaults to mark."""
        return {"carrier": "mark"} if core.get("ingress") == "tc" else {}

    def validate_core(self, values: Mapping[str, Any], core: Mapping[str, Any]) -> None:
        if core.get("ingress") == "tc" and values["carrier"] == "data_meta":
            raise ParamError(
                "key metadata: carrier=data_meta needs XDP ingress (a TC program has no "
                "XDP metadata to write); with ingress=tc use carrier=mark (the default there)"
            )

    # ---- test oracle -------------------------------------------------
    def reference_key(self, l3: bytes, ethertype: int,
                      values: Mapping[str, Any]) -> tuple[str, bytes | None]:
        """Any IPv4 or IPv6 packet gets an id, which is opaque (None): the
        packet's bytes are not looked at."""
        if ethertype in (ETH_P_IP, ETH_P_IPV6):
            return "ok", None
        return "no_key", None

    @staticmethod
    def decode_meta(meta: bytes) -> tuple[int, int] | None:
        """(flags, id) from the metadata XDP ingress left in front of the
        packet (``RunResult.meta``), or None if it holds none of ours.

        ``struct sfc_meta`` starts at ``data_meta``, i.e. at ``meta[0]``; a
        metadata area shorter than :data:`META_LEN` (struct + guard) or without
        the magic is not ours, as in the C programs.
        """
        if len(meta) < META_LEN:
            return None
        magic, flags, ident = struct.unpack_from(META_FORMAT, meta, 0)
        if magic != META_MAGIC:
            return None
        return flags, ident

    def carry_to_egress(self, meta: bytes, values: Mapping[str, Any]) -> int:
        """The ``skb->mark`` egress sees, given the metadata XDP ingress wrote.

        Simulates what travels between the two test runs, since
        BPF_PROG_TEST_RUN cannot hand data_meta to a TC program:

        * ``carrier=mark``: what ``sfc_carrier`` writes (bit 31, bit 30 if
          plain, the id in bits 0..29); 0 if the metadata is not ours (the
          program then leaves the mark as it was, here 0).
        * ``carrier=data_meta``: 0. Egress reads data_meta, which a TC test
          run cannot provide, so its positive path is unreachable there
          (see :meth:`test_run_round_trip`); only namespace tests cover it.
        """
        if values["carrier"] != "mark":
            return 0
        decoded = self.decode_meta(meta)
        if decoded is None:
            return 0
        flags, ident = decoded
        mark = MARK_OURS | (ident & MARK_ID)
        if flags & META_FLAG_PLAIN:
            mark |= MARK_PLAIN
        return mark

    def reference_egress_carried(
        self, frame: bytes, mark: int, values: Mapping[str, Any]
    ) -> tuple[str, bytes | None]:
        """Egress key step for a TC test run of ``frame`` with ``skb->mark =
        mark``: ("ok", cache key bytes) or (egress outcome, None), as the C
        ``key_egress`` decides. Frames that are not IPv4/IPv6 are "ignored".

        A frame without the carrier never went through ingress (the host's own
        packets: neighbour discovery, locally generated traffic): "ignored", so
        strict mode does not drop them. With carrier=data_meta a TC test run has
        no metadata, so every IP frame is "ignored" there.
        """
        if len(frame) < 14:
            return "ignored", None
        if struct.unpack_from("!H", frame, 12)[0] not in (ETH_P_IP, ETH_P_IPV6):
            return "ignored", None
        if values["carrier"] != "mark" or not mark & MARK_OURS:
            return "ignored", None
        if mark & MARK_PLAIN:
            return "plain", None
        return "ok", struct.pack("=Q", mark & MARK_ID)

    def conformance_params(self) -> list[dict[str, Any]]:
        """carrier=mark: BPF_PROG_TEST_RUN cannot hand XDP data_meta to a TC program
        (:meth:`test_run_round_trip`); the data_meta carrier is covered by namespace tests."""
        return [{"carrier": "mark"}]

    def test_run_round_trip(self, values: Mapping[str, Any]) -> bool:
        """Whether ingress -> :meth:`carry_to_egress` -> egress restores under
        BPF_PROG_TEST_RUN (only with carrier=mark)."""
        return values["carrier"] == "mark"

    @staticmethod
    def id_mask(values: Mapping[str, Any]) -> int:
        """The largest id drawn under ``values`` (ids wrap to 0 after it)."""
        return (1 << ID_BITS[values["carrier"]]) - 1
