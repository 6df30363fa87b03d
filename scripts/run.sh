#!/usr/bin/env bash
# The README's main command: set up this machine (idempotent), then run the embedded
# default, `sfcframe demo`: a namespace testbed (sender - SFF - VNF host - receiver)
# where the SFF stamps a 10-label SR-MPLS stack unique per packet, the caching proxy
# (started with the runtime) strips and restores it around a forwarding VNF, and the
# receiver checks every packet's stack. Ends with a summary and PASS/FAIL (exit 0/1).
# Arguments go to `sfcframe demo` (e.g. --vnf nat, --encap nsh, --seconds 5, --json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
export BCC_KERNEL_SOURCE="${BCC_KERNEL_SOURCE:-/usr/src/sfcframe-kernel-headers}"
exec .venv/bin/sfcframe demo "$@"
