"""Compiling generated C with bcc and loading it through the verifier.

bcc prints clang diagnostics and verifier logs on the C-level stderr and
raises a bare Exception; :func:`_capture_fd2` collects that text so it can be
returned inside :class:`CompileError` / :class:`VerifierError`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sfcframe.bpfsys import import_bcc
from sfcframe.composer import MAIN_FILE, Rendered
from sfcframe.errors import CompileError, KernelFeatureError, VerifierError
from sfcframe.plugin import ProgramSpec

#: where scripts/setup.sh builds the merged Debian header tree bcc needs
MERGED_HEADERS = Path("/usr/src/sfcframe-kernel-headers")


def bcc_module():
    if MERGED_HEADERS.is_dir():
        os.environ.setdefault("BCC_KERNEL_SOURCE", str(MERGED_HEADERS))
    try:
        bcc = import_bcc()
    except ImportError as exc:
        raise KernelFeatureError(
            f"bcc is not importable ({exc}); run scripts/setup.sh "
            "(it installs Debian's python3-bpfcc and a venv that sees it)"
        ) from None
    return bcc


def require_root() -> None:
    if os.geteuid() != 0:
        raise KernelFeatureError("loading BPF programs needs root (CAP_BPF and CAP_NET_ADMIN)")


@contextlib.contextmanager
def _capture_fd2() -> Iterator[list[str]]:
    """Redirect the process's fd 2 into a buffer for the duration."""
    sink: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode(errors="replace"))


@dataclass
class LoadedModule:
    """A compiled and loaded build: the bcc object and one fd per program."""

    rendered: Rendered
    bpf: object
    build_dir: Path
    programs: dict[str, ProgramSpec]
    fds: dict[str, int]
    compile_seconds: float
    load_seconds: float
    instructions: dict[str, int] = field(default_factory=dict)
    license: str = ""
    _tmp: tempfile.TemporaryDirectory | None = None

    def table(self, name: str):
        return self.bpf.get_table(name.encode())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.bpf.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def compile_and_load(rendered: Rendered, build_dir: Path | None = None) -> LoadedModule:
    """Compile the rendered files with bcc and load every program."""
    require_root()
    bcc = bcc_module()
    tmp = None
    if build_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="sfcframe-build-")
        build_dir = Path(tmp.name)
    rendered.write(build_dir)
    main = build_dir / MAIN_FILE
    started = time.perf_counter()
    try:
        with _capture_fd2() as log:
            bpf = bcc.BPF(text=rendered.files[MAIN_FILE].encode())
    except Exception as exc:
        if tmp is not None:
            tmp.cleanup()
        text = "".join(log).strip()
        raise CompileError(
            f"bcc could not compile {main.name}: {_first_error(text) or exc}", log=text
        ) from None
    compiled = time.perf_counter()
    prog_types = {"xdp": bcc.BPF.XDP, "sched_cls": bcc.BPF.SCHED_CLS}
    fds: dict[str, int] = {}
    instructions: dict[str, int] = {}
    programs = {p.function: p for p in rendered.spec.programs}
    for prog in programs.values():
        try:
            with _capture_fd2() as log:
                fn = bpf.load_func(prog.function.encode(), prog_types[prog.prog_type])
        except Exception as exc:
            bpf.cleanup()
            if tmp is not None:
                tmp.cleanup()
            text = "".join(log).strip()
            raise VerifierError(prog.function, str(exc).strip() or "rejected", text) from None
        fds[prog.function] = fn.fd
        instructions[prog.function] = len(bpf.dump_func(prog.function.encode())) // 8
    loaded = time.perf_counter()
    return LoadedModule(
        rendered=rendered,
        bpf=bpf,
        build_dir=build_dir,
        programs=programs,
        fds=fds,
        compile_seconds=compiled - started,
        load_seconds=loaded - compiled,
        instructions=instructions,
        license=bcc.libbcc.lib.bpf_module_license(bpf.module).decode(),
        _tmp=tmp,
    )


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if "error:" in line:
            return line.strip()
    return ""
