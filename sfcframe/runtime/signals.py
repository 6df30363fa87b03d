"""Signals while ``up`` or ``down`` change the host: SIGTERM unwinds like Ctrl-C,
and nothing interrupts a roll-back."""

from __future__ import annotations

import contextlib
import os
import signal


@contextlib.contextmanager
def _handlers(wanted: dict):
    """Install ``{signal: handler}`` for the block, then put the previous ones back
    (nothing is installed outside the main thread, where Python cannot)."""
    try:
        saved = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def ignored():
    """No second Ctrl-C or SIGTERM may cut a roll-back short."""
    return _handlers({signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_IGN})


def sigterm_as_interrupt():
    """SIGTERM during up/down behaves like Ctrl-C: the undo stack runs.

    Only in this process: pyroute2 forks helpers to open sockets in a namespace
    and stops them with SIGTERM; a forked copy must die, not unwind (and undo)
    the parent's work.
    """
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:
            os._exit(128 + signum)
        raise KeyboardInterrupt

    return _handlers({signal.SIGTERM: handler})
