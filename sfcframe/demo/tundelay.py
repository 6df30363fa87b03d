"""A user-space VNF: hold every packet read from a TUN device for a fixed time,
then write it back to the device, unchanged.

    python -m sfcframe.demo.tundelay tun0 --delay-ms 3 [--stats FILE]

The device must exist (``ip tuntap add dev tun0 mode tun``, which sets
IFF_NO_PI); policy routing sends the packets into it and the kernel routes
what comes back out of it. On SIGTERM/SIGINT it writes its counters as JSON to
``--stats`` and exits. The packets lose all kernel metadata on the way through
user space, which is what the ``tcpip`` key is for.
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import json
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
READ_BURST = 256


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tundelay", description=__doc__.split("\n\n")[0])
    ap.add_argument("device")
    ap.add_argument("--delay-ms", type=float, default=3.0)
    ap.add_argument("--stats", help="write counters as JSON here on exit")
    args = ap.parse_args(argv)

    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", args.device.encode(), IFF_TUN | IFF_NO_PI))
    delay = args.delay_ms / 1000.0
    held: collections.deque[tuple[float, bytes]] = collections.deque()
    stats = {"read": 0, "written": 0, "write_errors": 0, "max_held": 0, "delay_ms": args.delay_ms}
    stop = False

    def on_signal(signum, frame):  # noqa: ARG001
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    clock = time.monotonic

    while not stop:
        now = clock()
        while held and held[0][0] <= now:
            try:
                os.write(fd, held.popleft()[1])
                stats["written"] += 1
            except OSError:
                stats["write_errors"] += 1
        timeout_ms = (held[0][0] - now) * 1000 if held else 200
        try:
            ready = poller.poll(max(0.0, timeout_ms))
        except InterruptedError:
            continue
        if not ready:
            continue
        now = clock()
        for _ in range(READ_BURST):
            try:
                packet = os.read(fd, 65536)
            except BlockingIOError:
                break
            held.append((now + delay, packet))
            stats["read"] += 1
        if len(held) > stats["max_held"]:
            stats["max_held"] = len(held)

    if args.stats:
        with open(args.stats, "w") as out:
            json.dump(stats, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
