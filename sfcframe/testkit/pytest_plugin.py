"""pytest fixtures for testing sfcframe builds and plugins against the kernel.

Registered as a pytest plugin (entry point ``pytest11: sfcframe``), so any
project that installs sfcframe — a third-party plugin included — gets:

- ``kernel_ready``: fails the test (never skips) when root, BTF or bcc is missing;
- ``proxy_factory(encap, key, stages=(), **params)``: a :class:`KernelProxy`, compiled
  once per session and build (parameters that resolve to the same spec share it);
- ``harness_factory(encap, key, strict=False, stages=(), **params)``: a :class:`Harness`
  on an emptied cache with zeroed counters and the stages' default settings;
- one warning filter, :data:`PARSED_SOURCE_ESCAPES`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Hypothesis reads the source of every imported module it takes for local code
#: (anything outside a ``site-packages`` directory: Debian's ``dist-packages`` too) with
#: ``ast.parse``, which reports escape sequences as warnings of a file named
#: ``<unknown>``. bcc's ``__init__.py`` (Debian's python3-bpfcc) writes a regular
#: expression as a non-raw bytes literal, so the first hypothesis test of a fresh machine
#: showed ``<unknown>:749: DeprecationWarning: invalid escape sequence '\\.'``. Only
#: warnings of parsed source (module ``<unknown>``) are ignored: an imported module with a
#: bad escape is still reported under its own name.
PARSED_SOURCE_ESCAPES = (
    "ignore:invalid escape sequence:DeprecationWarning:<unknown>",
    "ignore:invalid escape sequence:SyntaxWarning:<unknown>",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in PARSED_SOURCE_ESCAPES:
        config.addinivalue_line("filterwarnings", line)


def kernel_problem() -> str | None:
    """Why kernel tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "kernel tests need root (BPF_PROG_TEST_RUN, CAP_BPF, CAP_NET_ADMIN)"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    try:
        from sfcframe.loader import bcc_module

        bcc_module()
    except Exception as exc:  # noqa: BLE001 - reported verbatim
        return f"bcc unavailable: {exc}"
    return None


@pytest.fixture(scope="session")
def kernel_ready() -> None:
    problem = kernel_problem()
    if problem:
        pytest.fail(f"KERNEL FEATURE MISSING: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def proxy_factory(kernel_ready):
    from sfcframe.spec import resolve_spec
    from sfcframe.testkit.kernel import KernelProxy

    proxies: dict = {}

    def get(encap: str, key: str, stages: tuple[str, ...] = (), **params) -> KernelProxy:
        # one build per resolved spec: the same build asked for with other spellings
        # (defaults given or not, qualified names) is compiled once
        ident = resolve_spec(encap, key, params, tuple(stages)).describe()
        if ident not in proxies:
            proxies[ident] = KernelProxy(encap, key, params, tuple(stages))
        return proxies[ident]

    yield get
    for proxy in proxies.values():
        proxy.close()


@pytest.fixture
def harness_factory(proxy_factory):
    from sfcframe.testkit.harness import Harness

    def make(encap: str, key: str, strict: bool = False, stages: tuple[str, ...] = (),
             **params) -> Harness:
        harness = Harness(proxy_factory(encap, key, stages, **params), strict=strict)
        harness.reset()
        for st in harness.proxy.spec.stages:  # a fresh harness: the stages' defaults
            harness.set_stage_settings(st.name, st.default_settings())
        return harness

    return make
