"""How many hypothesis examples each property draws per build, and its settings.

``SFCFRAME_CONFORMANCE_SCALE`` (environment, default 1) multiplies every count: 0.25
for a quick run, 10 for a long one (at least one example each)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = float(os.environ.get("SFCFRAME_CONFORMANCE_SCALE", "1"))

#: examples per build of the round trip (any header, stage data, inner packet, function)
ROUND_TRIP_EXAMPLES = 100
#: examples per build of two packets of one flow (headers and sequence numbers vary)
PER_PACKET_EXAMPLES = 40
#: batches (up to 8 mixed frames each) per build of the counters property
BATCH_EXAMPLES = 20


def property_settings(examples: int) -> settings:
    """No deadline (kernel runs vary on a loaded machine), no example database
    (nothing written into the plugin's checkout), fixtures shared by examples."""
    return settings(max_examples=max(1, round(examples * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.differing_executors])
