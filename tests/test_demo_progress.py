"""`sfcframe demo` progress lines: a later stage never ahead of an earlier one."""

from __future__ import annotations

import secrets

import pytest

pytestmark = pytest.mark.kernel


def test_progress_lines_keep_the_stages_in_order(kernel_ready):
    from sfcframe.demo.proxy import RuntimeProxy
    from sfcframe.demo.report import progress_line
    from sfcframe.demo.run import DemoConfig, run_demo
    from sfcframe.demo.topology import leftover_namespaces, sh

    tag = "t" + secrets.token_hex(3)
    snaps: list[dict] = []
    try:
        summary = run_demo(DemoConfig(tag=tag, seconds=4, labels=3), progress=snaps.append)
        assert summary.passed, summary.text()
    finally:
        leaks = leftover_namespaces(tag)
        for ns in leaks:
            sh(["ip", "netns", "del", ns], check=False)
        proxy = RuntimeProxy(f"sfcd-{tag}", "", "", (), "", is_up=True)
        if proxy.listed():
            leaks.append("proxy")
            proxy.down()
        assert not leaks, leaks
    assert len(snaps) >= 3
    for snap in snaps:
        line = progress_line(snap)
        assert snap["stamped"] >= snap["cached"] >= snap["restored"] >= snap["match"], line
    assert snaps[-1]["match"] > 0
