#!/usr/bin/env bash
# Create or update the venv of one plugin distribution, as its users would install it:
#
#   bash scripts/plugin-venv.sh plugins/sfcframe-exptag     # prints the venv's path
#
# .venv-plugins/<dist>/ (--system-site-packages, for Debian's bcc, like .venv) gets
# sfcframe from this checkout and the distribution with its `test` extra, both as copies
# (not editable), built from temporary copies of their sources (an in-place build leaves
# build/ behind, whose stale files can leak into later builds). Quick when nothing
# changed: the install is stamped with a hash of both sources, like setup.sh's.
#
# Environment: SFCFRAME_FORCE_PIP=1 reinstalls even if nothing changed.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
dir="${1:?usage: plugin-venv.sh plugins/<distribution>}"
dir="${dir%/}"
[[ -f "$dir/pyproject.toml" ]] || { echo "ERROR: $dir has no pyproject.toml" >&2; exit 1; }
dist="$(basename "$dir")"
venv="$REPO_ROOT/.venv-plugins/$dist"
SFCFRAME_SOURCES=(pyproject.toml README.md LICENSE sfcframe encaps bpf_templates)

sources_hash() {  # sources_hash PATH...: one hash over every file, build outputs left out
    find "$@" -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*' \
         -not -path '*/build/*' -not -path '*/dist/*' -print0 | sort -z | xargs -0 sha256sum \
        | sha256sum | cut -d' ' -f1
}
copy_sources() {  # copy_sources DEST PATH...: the files sources_hash covers
    mkdir -p "$1"
    local dest="$1"; shift
    tar -cf - --exclude=__pycache__ --exclude='*.egg-info' --exclude=build --exclude=dist "$@" \
        | tar -xf - -C "$dest"
}

if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> Creating $venv (--system-site-packages, for Debian's bcc)" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
fi

want="test $(sources_hash "${SFCFRAME_SOURCES[@]}") $(sources_hash "$dir")"
stamp="$venv/.sfcframe-pip-stamp"
if [[ "${SFCFRAME_FORCE_PIP:-0}" != 1 && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "    $dist: venv up to date" >&2
else
    rm -f "$stamp"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    copy_sources "$tmp/sfcframe" "${SFCFRAME_SOURCES[@]}"
    (cd "$dir" && copy_sources "$tmp/$dist" .)
    echo "==> pip install sfcframe (this checkout) and $dist[test] into $venv" >&2
    # one command: pip takes sfcframe from the copy, never from an index
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        "$tmp/sfcframe" "$tmp/$dist[test]" >&2
    echo "$want" > "$stamp"
fi
echo "$venv"
