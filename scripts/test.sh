#!/usr/bin/env bash
# Run the test suite with the venv made by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -z "${BCC_KERNEL_SOURCE:-}" && -d /usr/src/sfcframe-kernel-headers ]]; then
    export BCC_KERNEL_SOURCE=/usr/src/sfcframe-kernel-headers
fi
exec .venv/bin/python -m pytest -q tests "$@"
