"""An APN source for SRv6 namespace testbeds (the plugin's scenario test uses it):
a TC egress program on the SFF that
puts an APN header into every packet the kernel's H.Encaps made, as an option of
a Hop-by-Hop header inserted behind the outer IPv6 header (nothing in the kernel
inserts one). The APN ID tells the TCP streams apart: ``ID_BASE | destination
port`` of the inner TCP segment, so each iperf3 stream has its own ID.
"""

from __future__ import annotations

import ctypes

from sfcframe_apn import header

ID_BASE = 0x300A0000  # APP-Group 0x300A, the User-Group is the port
HBH_LEN = 16
OUTCOMES = ("inserted", "not_srv6", "failed")

_SOURCE = r"""
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/pkt_cls.h>

#define HBH_LEN		%(hbh_len)d
#define IP6_NH_OFF	(ETH_HLEN + 6)
#define IP6_PLEN_OFF	(ETH_HLEN + 4)
#define SRH_OFF		(ETH_HLEN + 40)

BPF_PERCPU_ARRAY(apn_bed_counters, __u64, 3);	/* inserted, not_srv6, failed */

static __always_inline int count(__u32 i)
{
	__u64 *c = apn_bed_counters.lookup(&i);

	if (c)
		*c += 1;
	return TC_ACT_OK;
}

int apn_insert(struct __sk_buff *skb)
{
	__u8 hbh[HBH_LEN] = { 43, HBH_LEN / 8 - 1, %(option_type)d, 8, 1, 0, 0, 0,
			      %(id_hi)d, %(id_lo)d, 0, 0, 1, 2, 0, 0 };	/* APN option, PadN(4) */
	__u8 ip6[8], srh[2], ihl, zero = 0;
	__be16 dport, plen;
	__u32 inner;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return count(1);
	if (bpf_skb_load_bytes(skb, ETH_HLEN, ip6, sizeof(ip6)) || ip6[6] != 43 ||
	    bpf_skb_load_bytes(skb, SRH_OFF, srh, sizeof(srh)) || srh[0] != 4)
		return count(1);
	inner = SRH_OFF + (srh[1] + 1) * 8;
	if (bpf_skb_load_bytes(skb, inner, &ihl, 1) ||
	    bpf_skb_load_bytes(skb, inner + (ihl & 0x0F) * 4 + 2, &dport, 2))
		return count(2);
	hbh[10] = bpf_ntohs(dport) >> 8;
	hbh[11] = bpf_ntohs(dport) & 0xFF;
	plen = bpf_htons(((__u16)ip6[4] << 8 | ip6[5]) + HBH_LEN);
	if (bpf_skb_adjust_room(skb, HBH_LEN, BPF_ADJ_ROOM_NET, 0) ||
	    bpf_skb_store_bytes(skb, SRH_OFF, hbh, HBH_LEN, 0) ||
	    bpf_skb_store_bytes(skb, IP6_NH_OFF, &zero, 1, 0) ||
	    bpf_skb_store_bytes(skb, IP6_PLEN_OFF, &plen, 2, 0))
		return count(2);
	return count(0);
}
"""


def apn_of(port: int) -> bytes:
    """The APN header the program inserts for a stream to ``port``."""
    return header.ApnHeader(1, ID_BASE | port).pack()


def hbh_of(port: int, option_type: int) -> bytes:
    """The whole Hop-by-Hop header (next header 43: the SRH follows)."""
    apn = apn_of(port)
    return bytes([43, HBH_LEN // 8 - 1, option_type, len(apn)]) + apn + bytes([1, 2, 0, 0])


class ApnSource:
    """The program, compiled; attached to an interface in a namespace by pyroute2."""

    def __init__(self, option_type: int):
        from bcc import BPF

        source = _SOURCE % {"hbh_len": HBH_LEN, "option_type": option_type,
                            "id_hi": ID_BASE >> 24, "id_lo": (ID_BASE >> 16) & 0xFF}
        self.bpf = BPF(text=source.encode())
        self.fn = self.bpf.load_func(b"apn_insert", BPF.SCHED_CLS)

    def attach(self, netns: str, ifname: str) -> None:
        from pyroute2 import IPRoute

        with IPRoute(netns=netns) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.tc("add", "clsact", index)
            ipr.tc("add-filter", "bpf", index, ":1", fd=self.fn.fd, name=self.fn.name.decode(),
                   parent="ffff:fff3", classid=1, direct_action=True, prio=10)

    def counters(self) -> dict[str, int]:
        table = self.bpf.get_table(b"apn_bed_counters")
        return {name: sum(table[ctypes.c_int(i)]) for i, name in enumerate(OUTCOMES)}

    def close(self) -> None:
        self.bpf.cleanup()


def parse_pcap(path: str, sid: str, option_type: int) -> list[tuple[int, bytes, int]]:
    """(inner TCP destination port, the Hop-by-Hop header, inner TOS) of every SRv6
    packet to ``sid`` in a pcap."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import rdpcap

    out = []
    for pkt in rdpcap(path):
        if IPv6 not in pkt or pkt[IPv6].dst != sid or IP not in pkt or TCP not in pkt:
            continue
        raw = bytes(pkt[IPv6])
        hbh = raw[40:40 + (raw[41] + 1) * 8] if raw[6] == 0 else b""
        out.append((pkt[TCP].dport, hbh, pkt[IP].tos))
    return out
