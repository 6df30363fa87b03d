#!/usr/bin/env bash
# The README's test command: set up this machine (idempotent), then run every test:
#   - tests/ in .venv (sfcframe editable, the plugins/ distributions installed beside it);
#   - each plugins/<dist>/tests in a venv of its own, .venv-plugins/<dist>, holding only
#     sfcframe and that distribution, installed as copies (scripts/plugin-venv.sh).
# Options (-q, -x, -k EXPR ...) go to every run. Given test paths (tests/test_golden.py),
# only those run, in .venv. Every run happens; the script fails if any failed.
# Kernel tests need root and BPF; they fail, never skip, when either is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export BCC_KERNEL_SOURCE="${BCC_KERNEL_SOURCE:-/usr/src/sfcframe-kernel-headers}"

for arg in "$@"; do
    if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then  # a path (maybe with ::test)
        exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
    fi
done

failed=()
.venv/bin/python -m pytest -p no:cacheprovider tests "$@" || failed+=(tests)
for dir in plugins/*/; do
    [[ -d "$dir/tests" ]] || continue
    dist="$(basename "$dir")"
    echo "==> $dist: its tests in its own venv"
    if ! venv="$(bash scripts/plugin-venv.sh "$dir")"; then
        failed+=("$dist (venv)")
        continue
    fi
    # -P: the checkout of the distribution stays off sys.path; its installed copy is tested
    (cd "$dir" && "$venv/bin/python" -P -m pytest -p no:cacheprovider tests "$@") || failed+=("$dist")
done
if (( ${#failed[@]} )); then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
