"""Which files and directories the runtime may trust: root's own, nobody else's.

The state directory, the pin root and every instance's pin directory are
created with mode 0700 (whatever the umask) and checked with ``lstat`` before
use: a symlink, something that is not a directory, another owner, or a group-
or world-writable mode is refused (bpffs is mounted world-writable with the
sticky bit, so anyone may create names under ``/sys/fs/bpf``). A state record
must be a regular file owned by root and writable by root only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sfcframe.runtime.errors import TrustError

ROOT_UID = 0
DIR_MODE = 0o700
FILE_MODE = 0o600


def _problem(st: os.stat_result, kind: str) -> str | None:
    if kind == "directory" and not stat.S_ISDIR(st.st_mode):
        return "is not a directory" + (" (a symlink)" if stat.S_ISLNK(st.st_mode) else "")
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        return "is not a regular file" + (" (a symlink)" if stat.S_ISLNK(st.st_mode) else "")
    if st.st_uid != ROOT_UID:
        return f"is owned by uid {st.st_uid}, not root"
    if st.st_mode & 0o022:
        return f"is group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def check_file(path: Path, st: os.stat_result) -> None:
    """Refuse a state file (its ``lstat``/``fstat``) that others could have written."""
    problem = _problem(st, "file")
    if problem:
        raise TrustError(
            f"{path} {problem}: refusing to trust it (check its content, then "
            f"`chown root: {path}; chmod 600 {path}`, or remove it)"
        )


def private_dir(path: Path) -> Path:
    """``path`` as a directory only root can change: created 0700 if missing
    (parents as needed), tightened to 0700 if root's own, refused otherwise."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, DIR_MODE)
            os.chmod(path, DIR_MODE)
        except FileExistsError:
            pass  # made meanwhile: checked below like any other
        st = os.lstat(path)
    problem = _problem(st, "directory")
    if problem:
        raise TrustError(
            f"{path} {problem}: refusing to use it (remove it or make it root's, mode 0700)"
        )
    if stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def new_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) and fail if it exists: proof that we made it."""
    os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path
