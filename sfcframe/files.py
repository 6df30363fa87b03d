"""Writing a file so that nothing planted at its name is followed.

:func:`replace_file` writes a new file next to the target (``O_CREAT |
O_EXCL | O_NOFOLLOW``, explicit mode, whatever the umask) and renames it over
the target: a symlink at the name is replaced, never written through, and a
reader sees the old content or the new one, never half of it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def replace_file(directory: Path, name: str, data: bytes, mode: int) -> Path:
    """Write ``directory/name`` (``name`` has no ``/``) with ``mode``; OSError on failure."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a file name: {name!r}")
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, _CREATE, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), mode)
                handle.write(data)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)
    return directory / name
