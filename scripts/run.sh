#!/usr/bin/env bash
# The README's main command: set up this machine (idempotent), then run the main job
# on the embedded default: build the SR-MPLS caching proxy with the tcpip key and load
# it into the kernel verifier.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
export BCC_KERNEL_SOURCE="${BCC_KERNEL_SOURCE:-/usr/src/sfcframe-kernel-headers}"
exec .venv/bin/sfcframe build --encap mpls --key tcpip --check "$@"
