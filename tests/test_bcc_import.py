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


PARSING_TEST = r'''
import ast


def test_parse_source_like_hypothesis_does():
    ast.parse("x = '\\.'")  # a file named <unknown>, as hypothesis reads local modules


def test_import_a_module_with_a_bad_escape():
    import bad_escape  # compiled from source here: a warning under its own name
'''


def _pytest_in(tmp_path, *options: str) -> str:
    (tmp_path / "test_parsed.py").write_text(PARSING_TEST)
    (tmp_path / "bad_escape.py").write_text("PATTERN = '\\.'\n")
    run = subprocess.run([sys.executable, "-B", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          *options, str(tmp_path / "test_parsed.py")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_the_plugin_hides_escape_warnings_of_parsed_source_only(tmp_path):
    """sfcframe's pytest plugin (PARSED_SOURCE_ESCAPES): hypothesis parsing Debian's bcc
    source no longer leaves an anonymous warning in every fresh run; a module imported
    with the same fault is still reported, under its name."""
    out = _pytest_in(tmp_path)
    assert "<unknown>" not in out, out
    assert "bad_escape.py:1: DeprecationWarning: invalid escape sequence" in out, out
    # without the plugin the parsed source's warning shows: the test above can fail
    out = _pytest_in(tmp_path, "-p", "no:sfcframe")
    assert "<unknown>:1: DeprecationWarning: invalid escape sequence" in out, out
