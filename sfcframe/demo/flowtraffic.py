"""Traffic other than TCP for the demo testbed (``sfcframe demo --traffic``).

- ``rtp``: RTP streams (default 50, G.711-like: 160-byte payload, payload type
  0, timestamp + 160 per packet, 50 packets a second each), one UDP socket per
  stream, to even ports from 5004 on at the receiver. A small socket sender
  (this module): Debian 12 has ``ffmpeg`` (5.1) and ``gstreamer1.0-tools``
  (1.22) in its archive, but neither is installed on these machines, and a
  sender of our own makes the rate and the stream count exact.
- ``esp``: IPsec ESP with AES-GCM (RFC 4106, 16-byte ICV) in transport mode, on
  two SAs: one as IP protocol 50 (a raw socket), one UDP-encapsulated to port
  4500 (RFC 3948). This kernel has no ESP transform, so the packets are made
  here with the ``cryptography`` package; :func:`esp_payload` gives byte for byte
  what scapy's ``SecurityAssociation`` gives (tests/test_flow_scenarios.py), and
  is fast enough for bulk (scapy's own takes ~3 ms a packet).
- ``icmp``: ``ping -f`` (flood) from the sender, replies coming back plain.
- ``udp``: iperf3 ``-u -b 0`` (as fast as it goes).
- ``udpsame``: the ``udp`` key's worst case: one IPv4 datagram sent again and
  again, byte for byte the same, IP id included (a raw socket: this kernel gives
  every UDP datagram of its own a new IP id, also with DF; IPv6 has no id at all, so
  there identical datagrams are identical keys anyway), ``--rate-pps`` a second or
  as fast as the loop goes.
- ``mixed``: all of the above plus iperf3 TCP, at once (for the ``auto`` key).

Run as ``python -m sfcframe.demo.flowtraffic rtp|esp --dst ADDR --seconds S
[--streams N] [--pps N]`` inside the sender's namespace; it prints one JSON line
with the packets and bytes it sent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time

#: demo_settings.protocols bits (bpf_templates/_demo_common.j2, DEMO_PROTO_*)
PROTOCOLS = {"tcp": 1, "udp": 2, "icmp": 4, "esp": 8}
#: the protocols each --traffic kind sends (and the demo stamps)
TRAFFIC = {
    "tcp": ("tcp",),
    "udp": ("udp",),
    "rtp": ("udp",),
    "esp": ("udp", "esp"),
    "icmp": ("icmp",),
    "udpsame": ("udp",),
    "mixed": ("tcp", "udp", "icmp", "esp"),
}
RTP_BASE_PORT = 5004
RTP_SOURCE_PORT = 30000
NAT_T_PORT = 4500
#: AES-GCM key + salt of the demo's SAs (RFC 4106), and their SPIs
ESP_KEY = bytes(range(1, 21))
ESP_SPI_RAW = 0x5FC00100
ESP_SPI_UDP = 0x5FC00200


def protocol_mask(traffic: str) -> int:
    """demo_settings.protocols for a --traffic kind."""
    mask = 0
    for name in TRAFFIC[traffic]:
        mask |= PROTOCOLS[name]
    return mask


# ---- ESP (RFC 4303 + RFC 4106) --------------------------------------------------------
def esp_payload(spi: int, seq: int, inner: bytes, next_header: int, key: bytes = ESP_KEY,
                iv: bytes | None = None) -> bytes:
    """The ESP packet (from the SPI on) carrying ``inner`` (the transport-mode payload,
    e.g. a UDP datagram, ``next_header`` 17): AES-GCM with a 16-byte ICV, IV = the
    sequence number (8 bytes) unless given, padded to 4 bytes with 1, 2, 3, ..."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    iv = iv if iv is not None else seq.to_bytes(8, "big")
    pad = -(len(inner) + 2) % 4
    plain = inner + bytes(range(1, pad + 1)) + bytes([pad, next_header])
    head = struct.pack("!II", spi, seq)
    sealed = AESGCM(key[:-4]).encrypt(key[-4:] + iv, plain, head)
    return head + iv + sealed


def _udp_datagram(sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header (checksum 0: IPv4 allows it; it travels encrypted) and payload."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _send_for(seconds: float, pps: int, send_one) -> dict:
    """Call ``send_one(n)`` (n: packets sent so far; returns the bytes it sent, or
    raises OSError, e.g. ENOBUFS under load, when the packet was not sent) until
    ``seconds`` are over, ``pps`` packets a second (0: as fast as the loop goes)."""
    sent = nbytes = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            nbytes += send_one(sent)
        except OSError:
            continue
        sent += 1
        _pace(start, sent, pps)
    return {"packets": sent, "bytes": nbytes, "seconds": time.monotonic() - start}


def send_esp(dst: str, seconds: float, pps: int) -> dict:
    """Alternate the two SAs (raw protocol 50, UDP-encapsulated) until ``seconds`` are
    over; ``pps`` 0: as fast as the loop goes."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", NAT_T_PORT))
    seq = {ESP_SPI_RAW: 0, ESP_SPI_UDP: 0}
    body = bytes(200)

    def one(sent: int) -> int:
        spi = ESP_SPI_RAW if sent % 2 == 0 else ESP_SPI_UDP
        inner = _udp_datagram(40000, 9, struct.pack("!Q", sent) + body)
        packet = esp_payload(spi, seq[spi] + 1, inner, 17)
        if spi == ESP_SPI_RAW:
            raw.sendto(packet, (dst, 0))
        else:
            udp.sendto(packet, (dst, NAT_T_PORT))
        seq[spi] += 1  # only once sent
        return len(packet)

    try:
        result = _send_for(seconds, pps, one)
    finally:
        raw.close()
        udp.close()
    return {**result, "sa": {hex(k): v for k, v in seq.items()}}


# ---- identical UDP datagrams ------------------------------------------------------------
SAME_PORT = 7777


def send_same(dst: str, seconds: float, pps: int) -> dict:
    """One IPv4/UDP datagram with 200 payload bytes, the same bytes every time (IP id
    0x5FC0, DF; a raw socket), until ``seconds`` are over (``pps`` 0: as fast as the
    loop goes)."""
    from scapy.layers.inet import IP, UDP

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect((dst, SAME_PORT))  # no packet: only picks the source address
    src = probe.getsockname()[0]
    probe.close()
    datagram = bytes(IP(src=src, dst=dst, id=0x5FC0, flags="DF", ttl=64)
                     / UDP(sport=SAME_PORT, dport=SAME_PORT) / (b"same datagram " * 14 + bytes(4)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        return _send_for(seconds, pps, lambda _n: sock.sendto(datagram, (dst, 0)))
    finally:
        sock.close()


# ---- RTP (RFC 3550) -------------------------------------------------------------------
def send_rtp(dst: str, seconds: float, streams: int, pps: int) -> dict:
    """``streams`` RTP streams, round robin, ``pps`` packets a second in all."""
    socks, state = [], []
    for k in range(streams):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", RTP_SOURCE_PORT + k))
        socks.append(s)
        ssrc, seq, ts = struct.unpack("!IHI", os.urandom(10))
        state.append([ssrc, seq, ts])
    payload = bytes(160)

    def one(sent: int) -> int:
        k = sent % streams
        ssrc, seq, ts = state[k]
        header = struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc)
        socks[k].sendto(header + payload, (dst, RTP_BASE_PORT + 2 * k))
        state[k][1] = (seq + 1) & 0xFFFF
        state[k][2] = (ts + 160) & 0xFFFFFFFF
        return len(header) + len(payload)

    try:
        return {**_send_for(seconds, pps, one), "streams": streams}
    finally:
        for s in socks:
            s.close()


def _pace(start: float, sent: int, pps: int) -> None:
    if pps <= 0:
        return
    ahead = sent / pps - (time.monotonic() - start)
    if ahead > 0.001:
        time.sleep(ahead)


# ---- driving it from the demo -----------------------------------------------------------
def drive(topo, cfg, snapshot, progress) -> list:
    """Every sender cfg.traffic names, for cfg.seconds, toward the first receiver; a
    progress line a second; what each sent as a ``traffic.Stream`` (bits per second
    from its own count, iperf3's from its report)."""
    from sfcframe.demo import traffic
    from sfcframe.demo.drive import wait_for_senders

    kinds = cfg.traffic
    dst = topo.receiver_addr(1)
    sender, receiver = topo.senders[0], topo.receivers[0]
    iperf: list = []
    if kinds in ("udp", "mixed"):
        iperf += _iperf(topo, traffic, 1, 0, ["-u", "-b", "0"])
    if kinds == "mixed":
        iperf += _iperf(topo, traffic, 1, 1, [])
    if iperf:
        traffic.start(topo, iperf, cfg.seconds)
    own: list = []
    module = [sys.executable, "-m", "sfcframe.demo.flowtraffic"]
    if kinds in ("rtp", "mixed"):
        argv = [*module, "rtp", "--dst", dst, "--seconds", str(cfg.seconds),
                "--streams", str(cfg.rtp_streams)]
        if cfg.rate_pps:
            argv += ["--pps", str(cfg.rate_pps)]
        own.append(("rtp", traffic.Stream(sender, receiver, dst, RTP_BASE_PORT, 0)))
        own[-1][1].client = topo.popen(sender, argv, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    if kinds in ("esp", "mixed"):
        argv = [*module, "esp", "--dst", dst, "--seconds", str(cfg.seconds)]
        if kinds == "mixed" or cfg.rate_pps:
            argv += ["--pps", str(cfg.rate_pps or 5000)]
        own.append(("esp", traffic.Stream(sender, receiver, dst, NAT_T_PORT, 0)))
        own[-1][1].client = topo.popen(sender, argv, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    if kinds == "udpsame":
        argv = [*module, "same", "--dst", dst, "--seconds", str(cfg.seconds)]
        if cfg.rate_pps:
            argv += ["--pps", str(cfg.rate_pps)]
        own.append(("udpsame", traffic.Stream(sender, receiver, dst, SAME_PORT, 0)))
        own[-1][1].client = topo.popen(sender, argv, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    if kinds in ("icmp", "mixed"):
        argv = ["ping", "-f", "-q", "-w", str(max(1, round(cfg.seconds))), dst]
        own.append(("icmp", traffic.Stream(sender, receiver, dst, 0, 0)))
        own[-1][1].client = topo.popen(sender, argv, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    everything = iperf + [s for _, s in own]
    wait_for_senders(everything, cfg.seconds, snapshot, progress)
    traffic.collect(iperf)
    for kind, stream in own:
        _collect_own(kind, stream, cfg.seconds)
    time.sleep(0.2)
    return everything


def _iperf(topo, traffic, count: int, offset: int, extra: list[str]) -> list:
    planned = traffic.plan(topo, count)
    for s in planned:
        s.port += 10 + offset
        s.extra = list(extra)
    return planned


def _collect_own(kind: str, stream, seconds: float) -> None:
    """What one of our senders (or ping) reported, as iperf3's JSON shape."""
    try:
        out, err = stream.client.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        stream.error = f"{kind} sender did not finish"
        return
    if kind == "icmp":
        match = re.search(r"(\d+) packets transmitted, (\d+) received", out or "")
        if not match or not int(match.group(2)):
            stream.error = f"ping -f: no reply ({(err or out).strip()[:200]})"
            return
        sent, received = int(match.group(1)), int(match.group(2))
        stream.result = {"end": {"sum_received": {"bits_per_second": received * 84 * 8 / seconds}},
                         "packets": sent, "received": received}
        return
    try:
        report = json.loads((out or "").strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        stream.error = f"{kind} sender failed: {(err or out or '').strip()[:200]}"
        return
    stream.result = {"end": {"sum_received": {
        "bits_per_second": report["bytes"] * 8 / max(report["seconds"], 1e-9)}}, **report}
    if not report["packets"]:
        stream.error = f"{kind} sender sent nothing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sfcframe.demo.flowtraffic",
        description="Send RTP streams, ESP (AES-GCM, raw and UDP-encapsulated) or one UDP "
                    "datagram again and again (same) to ADDR for SECONDS; prints one JSON line "
                    "with what was sent.")
    parser.add_argument("kind", choices=("rtp", "esp", "same"))
    parser.add_argument("--dst", required=True, help="destination IPv4 address")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--streams", type=int, default=50, help="RTP streams (default 50)")
    parser.add_argument("--pps", type=int, default=None,
                        help="packets per second in all (rtp default: 50 per stream; "
                             "esp default 0: as fast as it goes)")
    args = parser.parse_args(argv)
    if args.kind == "rtp":
        pps = args.pps if args.pps is not None else 50 * args.streams
        result = send_rtp(args.dst, args.seconds, max(1, args.streams), pps)
    elif args.kind == "same":
        result = send_same(args.dst, args.seconds, args.pps or 0)
    else:
        result = send_esp(args.dst, args.seconds, args.pps or 0)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
