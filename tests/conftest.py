"""Shared fixtures. Kernel tests FAIL (never skip) when root or BPF is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sfcframe.testkit.harness import Harness

_proxies: dict = {}


def _kernel_problem() -> str | None:
    if os.geteuid() != 0:
        return "kernel tests need root (run scripts/test.sh as root)"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "kernel has no BTF (/sys/kernel/btf/vmlinux)"
    try:
        from sfcframe.loader import _bcc

        _bcc()
    except Exception as exc:  # noqa: BLE001 - reported verbatim
        return f"bcc unavailable: {exc}"
    return None


@pytest.fixture(scope="session")
def kernel_ready() -> None:
    problem = _kernel_problem()
    if problem:
        pytest.fail(f"KERNEL FEATURE MISSING: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def proxy_factory(kernel_ready):
    """Compile each (encap, key, params) once per session."""
    from sfcframe.testkit.kernel import KernelProxy

    def get(encap: str, key: str, **params):
        ident = (encap, key, tuple(sorted(params.items())))
        if ident not in _proxies:
            _proxies[ident] = KernelProxy(encap, key, params)
        return _proxies[ident]

    yield get
    for proxy in _proxies.values():
        proxy.close()
    _proxies.clear()


@pytest.fixture
def harness_factory(proxy_factory):
    def make(encap: str, key: str, strict: bool = False, **params) -> Harness:
        harness = Harness(proxy_factory(encap, key, **params), strict=strict)
        harness.reset()
        return harness

    return make
