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
               "--netns", bed.ns, "--cache-size", "1024", "--param", "cache=assoc",
               # frames stay in flight for seconds here (never forwarded back): above the
               # default horizon (1 s) the assoc table would count them stale and reclaim
               # them on contact
               "--param", "cache_horizon_ms=60000")
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
        # the assoc table: peak x 2, whole buckets of 16, no LRU slack
        assert doc["cache"] == "assoc" and doc["slack"] == 0
        assert doc["entries_needed"] == 14 and doc["cache_size"] == 16
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
        # stats of the assoc table: slots, not buckets; every entry live (within the horizon)
        cache = json.loads(sfc("stats", name, "--json").stdout)["cache"]
        assert cache["kind"] == "assoc" and cache["capacity"] == 1024 and cache["buckets"] == 64
        assert (cache["entries"], cache["live"], cache["stale"], cache["busy"]) == (7, 7, 0, 0)
        assert cache["horizon_ms"] == 60000
        assert cache["events"] == {"evicted": 0, "reclaimed": 0, "moved": 0}
        assert (cache["key_size"], cache["value_size"]) == (24, 40)  # an entry, not a bucket
        shown = sfc("stats", name).stdout
        assert "7 / 1,024 entries" in shown and "7 live, 0 stale (older than 60000 ms)" in shown
        from prometheus_client.parser import text_string_to_metric_families

        prom = sfc("stats", name, "--prometheus").stdout
        samples = {(s.name, s.labels.get("event", "")): s for fam in
                   text_string_to_metric_families(prom) for s in fam.samples
                   if s.labels.get("proxy") == name}
        assert samples["sfcframe_cache_capacity", ""].value == 1024
        assert samples["sfcframe_cache_capacity", ""].labels["cache"] == "assoc"
        assert samples["sfcframe_cache_events_total", "evicted"].value == 0
        assert ("sfcframe_cache_stale_entries", "") in samples
    finally:
        down = sfc("down", name)
        assert down.returncode == 0, down.stderr
    assert_no_trace(name)
