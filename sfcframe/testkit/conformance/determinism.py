"""Determinism: the same spec renders to the same bytes in processes with different
hash seeds (set and dict iteration orders differ between them)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

#: PYTHONHASHSEED of each rendering process
HASH_SEEDS = ("0", "1", "2718281828")

_RENDER_ALL = """
import hashlib, json, sys
from sfcframe import discovery
from sfcframe.composer import render
from sfcframe.spec import resolve_spec
out = {}
with discovery.cached():
    for ident, encap, key, params, stages in json.load(sys.stdin):
        files = render(resolve_spec(encap, key, params, stages)).files
        out[ident] = {name: hashlib.sha256(text.encode()).hexdigest()
                      for name, text in sorted(files.items())}
json.dump(out, sys.stdout)
"""


def digests(files: dict[str, str]) -> dict[str, str]:
    return {name: hashlib.sha256(text.encode()).hexdigest() for name, text in sorted(files.items())}


def render_elsewhere(combos, seed: str) -> dict[str, dict[str, str]]:
    """{combo id: {file: sha256}} rendered by a new interpreter with PYTHONHASHSEED=seed
    and this process's import path (so it sees the same plugins)."""
    specs = [(c.id, c.encap.name, c.key.name, c.params, list(c.stage_names)) for c in combos]
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", _RENDER_ALL], input=json.dumps(specs),
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"rendering with PYTHONHASHSEED={seed} failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


class DeterminismProperties:
    def test_rendered_c_is_the_same_in_every_process(self, combo):
        from sfcframe.composer import render

        # {seed: {combo id: {file: sha256}}}: one process per seed renders every combo
        rendered = type(self).__dict__.get("_rendered_by_seed")
        if rendered is None:
            rendered = {seed: render_elsewhere(self.combos, seed) for seed in HASH_SEEDS}
            type(self)._rendered_by_seed = rendered
        here = digests(render(combo.resolve()).files)
        for seed, by_combo in rendered.items():
            there = by_combo[combo.id]
            differ = sorted(name for name in here if there.get(name) != here[name])
            assert set(there) == set(here) and not differ, (
                f"{combo.id}: {differ or sorted(set(there) ^ set(here))} rendered differently "
                f"with PYTHONHASHSEED={seed} than in this process")
