"""Until the package is installed (scripts/setup.sh installs plugins/*/ that have a
pyproject.toml), import sfcframe_ioam from this source tree."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("sfcframe_ioam") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
