"""Runtime safety: an instance never touches what it does not own, and one broken
instance breaks nothing else (issue 8).

Every test runs the real ``sfcframe`` CLI against real attachments in namespaces
of its own (fixtures/netns.py, fixtures/hairpin.py), removed even when it fails.
"""

from __future__ import annotations

import pytest
from fixtures.netns import sfc

pytestmark = pytest.mark.kernel


# ---- 4. build -o never writes through a symlink ----------------------------------
def test_build_output_never_follows_a_planted_symlink(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.h"
    victim.write_text("precious\n")
    (out / "sfc_proxy.h").symlink_to(victim)
    (out / "sfc_ingress.c").symlink_to(tmp_path / "created-elsewhere.c")  # dangling
    proc = sfc("build", "--encap", "mpls", "--key", "tcpip", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "created-elsewhere.c").exists()
    for name in ("sfc_proxy.h", "sfc_ingress.c", "sfc_egress.c", "sfc_proxy.c"):
        path = out / name
        assert not path.is_symlink() and "DO NOT EDIT" in path.read_text()
    assert sorted(p.name for p in out.iterdir()) == [
        "sfc_egress.c", "sfc_ingress.c", "sfc_proxy.c", "sfc_proxy.h"]  # no temporaries left
