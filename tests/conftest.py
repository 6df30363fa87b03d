"""The kernel fixtures (kernel_ready, proxy_factory, harness_factory) come from
sfcframe's pytest plugin, sfcframe/testkit/pytest_plugin.py, which third-party
plugin packages get the same way."""

import pytest
from fixtures.netns import Testbed


@pytest.fixture
def bed(kernel_ready):
    """A namespace with a veth pair (va, vb); removed with all it holds even when the test fails."""
    testbed = Testbed()
    try:
        yield testbed
    finally:
        testbed.cleanup()
