"""Importing bcc through sfcframe warns of nothing.

Debian's ``bcc/__init__.py`` writes a regular expression as a non-raw bytes literal;
compiling it (no bytecode cached: a fresh machine, another Python) raises an
"invalid escape sequence" warning that named no file and showed up in the middle of
unrelated tests. ``sfcframe.bpfsys.import_bcc`` silences it for that import only.
"""

from __future__ import annotations

import subprocess
import sys

WARNINGS_ARE_ERRORS = (
    "import warnings; warnings.simplefilter('error'); "
    "from sfcframe.bpfsys import import_bcc; import_bcc(); "
    "warnings.warn('after the import, warnings are errors again')"
)


def test_bcc_imported_from_source_warns_of_nothing_and_filters_stay(tmp_path):
    # an empty bytecode cache: every module, bcc's too, is compiled from its source
    run = subprocess.run([sys.executable, "-X", f"pycache_prefix={tmp_path}", "-c",
                          WARNINGS_ARE_ERRORS], capture_output=True, text=True, timeout=120)
    # the import passed; the warning after it was an error (the filter was not left behind)
    assert run.returncode == 1, run.stderr
    assert "UserWarning: after the import, warnings are errors again" in run.stderr, run.stderr
    assert "escape sequence" not in run.stderr
