"""The kernel fixtures (kernel_ready, proxy_factory, harness_factory) come from
sfcframe's pytest plugin, sfcframe/testkit/pytest_plugin.py, which third-party
plugin packages get the same way."""

import secrets

import pytest
from fixtures.netns import Testbed

#: traffic time of a scenario run (3 s of iperf3: every packet checked)
SCENARIO_SECONDS = 3


@pytest.fixture
def bed(kernel_ready):
    """A namespace with a veth pair (va, vb); removed with all it holds even when the test fails."""
    testbed = Testbed()
    try:
        yield testbed
    finally:
        testbed.cleanup()


@pytest.fixture
def scenario(kernel_ready):
    """Run demos (``run_demo(DemoConfig(**kwargs))``, SCENARIO_SECONDS of traffic unless
    told); afterwards (pass or fail) nothing of them may be left: namespaces, proxies."""
    from sfcframe.demo.proxy import RuntimeProxy
    from sfcframe.demo.run import DemoConfig, run_demo
    from sfcframe.demo.topology import leftover_namespaces, sh

    tags: list[str] = []

    def run(**kwargs):
        tag = "t" + secrets.token_hex(3)
        tags.append(tag)
        kwargs.setdefault("seconds", SCENARIO_SECONDS)
        summary = run_demo(DemoConfig(tag=tag, **kwargs))
        print(summary.text())  # shown by pytest on failure (and with -s / -rP)
        return summary

    yield run
    leaks = []
    for tag in tags:
        name = f"sfcd-{tag}"
        for ns in leftover_namespaces(tag):
            leaks.append(ns)
            sh(["ip", "netns", "del", ns], check=False)
        proxy = RuntimeProxy(name, "", "", (), "", is_up=True)
        if proxy.listed():
            leaks.append(f"proxy {name}")
            proxy.down()
    assert not leaks, f"left behind: {leaks}"
