"""`sfcframe size --observe`: the in-flight count sampled from a running instance's counters.

Frames go out of va into vb, where the proxy's XDP ingress caches and strips them; nothing
is forwarded back out, so every cached frame stays in flight and the count is exact.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from fixtures.netns import assert_no_trace, mpls_frame, sfc

from sfcframe.runtime import sizing
from sfcframe.runtime.observe import observe

pytestmark = pytest.mark.kernel


def _cached(name: str) -> int:
    proc = sfc("stats", name, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["counters"]["ingress"]["cached"]


def _wait_cached(name: str, want: int) -> None:
    deadline = time.monotonic() + 5
    while _cached(name) < want:
        assert time.monotonic() < deadline, f"{name}: fewer than {want} frames cached"
        time.sleep(0.05)


def test_observe_counts_frames_in_flight(bed):
    name = bed.instance()
    proc = sfc("up", "--name", name, "--encap", "mpls", "--key", "tcpip", "--iface", "vb",
               "--netns", bed.ns, "--cache-size", "1024")
    assert proc.returncode == 0, proc.stderr
    try:
        for seq in range(3):  # already in the cache when sampling starts
            bed.send("va", mpls_frame(seq=1000 + seq))
        _wait_cached(name, 3)

        result = {}
        sampler = threading.Thread(
            target=lambda: result.setdefault("obs", observe(name, seconds=1.5, interval=0.01)))
        sampler.start()
        time.sleep(0.3)
        for seq in range(4):  # arrive while sampling
            bed.send("va", mpls_frame(seq=2000 + seq))
        sampler.join(timeout=10)
        obs = result["obs"]
        assert obs.start_entries == 3
        assert obs.peak_in_flight == 7 and obs.plain_in_cache is True
        assert obs.samples > 20 and 0 < obs.mean_in_flight < 7
        assert obs.rate_pps > 0 and obs.drift_pps > 0  # never consumed: all "drift"

        cli = sfc("size", "--observe", name, "--seconds", "0.3", "--json")
        assert cli.returncode == 0, cli.stderr
        doc = json.loads(cli.stdout)
        assert doc["basis"] == "observed peak" and doc["observation"]["peak_in_flight"] == 7
        assert doc["margin"] == sizing.DEFAULT_OBSERVED_MARGIN
        assert doc["entries_needed"] == 14 + sizing.lru_slack()
        assert doc["cache_size"] == sizing.next_pow2(14 + sizing.lru_slack())
        assert (doc["key_size"], doc["value_size"]) == (24, 40)  # from the instance's spec
        # idle now: nothing entered while sampling, so no rate and no sojourn to show
        text = sfc("size", "--observe", name, "--seconds", "1.5")
        assert text.returncode == 0 and "peak 7 packets in flight" in text.stdout
        assert "n/a pps (idle: no packet entered), sojourn n/a" in text.stdout
        assert text.stdout.splitlines()[0].startswith("--cache-size ")
        progress = text.stderr.splitlines()
        assert progress[0].startswith(f"observing {name} for 1.5 s")
        assert any(line.startswith(f"observing {name}: 1/1.5 s") and "peak 7 in flight" in line
                   for line in progress), progress
    finally:
        down = sfc("down", name)
        assert down.returncode == 0, down.stderr
    assert_no_trace(name)
