#!/usr/bin/env bash
# The README's test command: set up this machine (idempotent), then run every test.
# Kernel tests need root and BPF; they fail, never skip, when either is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export BCC_KERNEL_SOURCE="${BCC_KERNEL_SOURCE:-/usr/src/sfcframe-kernel-headers}"
paths=(tests)
for dir in plugins/*/tests; do
    [[ -d "$dir" ]] && paths+=("$dir")
done
exec .venv/bin/python -m pytest -p no:cacheprovider "${paths[@]}" "$@"
