#!/usr/bin/env bash
# Prepare a Debian 12 (bookworm) machine to build, load and test sfcframe.
#
#   sudo bash scripts/setup.sh
#
# Idempotent: a second run only checks, and changes nothing that is already right.
# What it does (see shared/FIELD-NOTES.md for the why):
#   - apt: bcc from Debian's python3-bpfcc (NEVER PyPI's "bcc", an unrelated project),
#     Debian's kernel headers, venv/pip, and the network test tools;
#   - kernel headers for bcc: the running kernel has no headers package, so bcc is pointed
#     at Debian's newest installed headers: a merged tree at /usr/src/sfcframe-kernel-headers
#     (use it with BCC_KERNEL_SOURCE) plus /lib/modules/$(uname -r)/{build,source} symlinks;
#   - bpffs at /sys/fs/bpf;
#   - .venv/ (with --system-site-packages, so that bcc is importable) with sfcframe[test,bench]
#     installed editable, and each plugins/*/ package;
#   - a final check that bcc compiles and loads a trivial program.
#
# Environment:
#   SFCFRAME_FORCE_PIP=1   reinstall the Python packages even if nothing changed.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
SYS_PYTHON=/usr/bin/python3
HEADERS_TREE=/usr/src/sfcframe-kernel-headers
KVER="$(uname -r)"

APT_PACKAGES=(python3-bpfcc linux-headers-amd64 python3-venv python3-pip iproute2 iperf3
              ethtool iptables nftables iputils-ping tcpdump make)
OPTIONAL_APT_PACKAGES=(bpftool)   # installed when the archive has them

say()  { echo "==> $*"; }
note() { echo "    $*"; }
die()  { echo "ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# Preconditions: root, BTF, the bpf() syscall.
# ---------------------------------------------------------------------------------------
[[ "$(id -u)" -eq 0 ]] || die "scripts/setup.sh must run as root (try: sudo bash scripts/setup.sh)"

[[ -r /sys/kernel/btf/vmlinux ]] \
    || die "/sys/kernel/btf/vmlinux is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF), sfcframe needs it"

[[ -x "$SYS_PYTHON" ]] || die "$SYS_PYTHON not found: this script expects Debian's python3"

say "Checking that the bpf() syscall works (creating a 1-entry array map)"
if ! bpf_err="$("$SYS_PYTHON" - <<'EOF' 2>&1
import ctypes, errno, os, platform, struct, sys
nr = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
if nr is None:
    sys.exit("unknown architecture %s" % platform.machine())
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
# union bpf_attr for BPF_MAP_CREATE: map_type=BPF_MAP_TYPE_ARRAY(2), key 4, value 4, 1 entry
attr = ctypes.create_string_buffer(struct.pack("=IIII", 2, 4, 4, 1) + b"\0" * 56)
fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(0), attr, ctypes.c_uint(len(attr.raw)))
if fd < 0:
    e = ctypes.get_errno()
    sys.exit("bpf(BPF_MAP_CREATE) failed: %s (%s)" % (errno.errorcode.get(e, e), os.strerror(e)))
os.close(fd)
EOF
)"; then
    die "the bpf() syscall is unavailable: $bpf_err"
fi

# ---------------------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------------------
is_installed() { [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == "ii " ]]; }
has_candidate() {
    local c
    c="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    [[ -n "$c" && "$c" != "(none)" ]]
}
lists_are_stale() {
    # stale = no package list at all, or the newest one is older than a day
    local newest
    newest="$(find /var/lib/apt/lists -maxdepth 1 -type f \( -name '*_Packages*' -o -name '*Release' \) \
              -printf '%T@\n' 2>/dev/null | sort -n | tail -1)"
    [[ -z "$newest" ]] && return 0
    (( $(date +%s) - ${newest%.*} > 86400 ))
}
APT_UPDATED=0
apt_update() {
    (( APT_UPDATED )) && return 0
    say "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
}

say "Checking Debian packages"
missing=()
for p in "${APT_PACKAGES[@]}" "${OPTIONAL_APT_PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
done

if (( ${#missing[@]} )); then
    if lists_are_stale; then
        apt_update
    else
        for p in "${missing[@]}"; do has_candidate "$p" || { apt_update; break; }; done
    fi
    to_install=()
    for p in "${missing[@]}"; do
        if has_candidate "$p"; then
            to_install+=("$p")
        elif [[ " ${OPTIONAL_APT_PACKAGES[*]} " == *" $p "* ]]; then
            note "optional package $p is not in the archive: skipped"
        else
            die "package $p is not available from apt (check /etc/apt/sources.list*)"
        fi
    done
    if (( ${#to_install[@]} )); then
        say "Installing: ${to_install[*]}"
        install_cmd=(apt-get install -y -q --no-install-recommends "${to_install[@]}")
        if ! DEBIAN_FRONTEND=noninteractive "${install_cmd[@]}"; then
            # lists younger than a day may still point at superseded .debs: refresh once and retry
            (( APT_UPDATED )) && die "apt-get install failed"
            note "apt-get install failed; refreshing package lists and retrying"
            apt_update
            DEBIAN_FRONTEND=noninteractive "${install_cmd[@]}" || die "apt-get install failed"
        fi
    fi
else
    note "all packages present"
fi

# ---------------------------------------------------------------------------------------
# Kernel headers for bcc
# ---------------------------------------------------------------------------------------
say "Kernel headers for bcc (running kernel $KVER)"
amd64_dir="$(find /usr/src -maxdepth 1 -type d -name 'linux-headers-*-amd64' 2>/dev/null | sort -V | tail -1)"
[[ -n "$amd64_dir" ]] || die "no /usr/src/linux-headers-*-amd64 found (is linux-headers-amd64 installed?)"
hdr_ver="${amd64_dir#/usr/src/linux-headers-}"; hdr_ver="${hdr_ver%-amd64}"
common_dir="/usr/src/linux-headers-${hdr_ver}-common"
[[ -d "$common_dir" ]] || die "$common_dir missing (expected beside $amd64_dir)"
note "using Debian headers $hdr_ver ($amd64_dir + $common_dir)"

stamp="$HEADERS_TREE/.sfcframe-headers"
want_stamp="$amd64_dir $common_dir"
if [[ -d "$HEADERS_TREE" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" \
      && -e "$HEADERS_TREE/include/generated/autoconf.h" && -e "$HEADERS_TREE/Makefile" ]]; then
    note "$HEADERS_TREE is up to date"
else
    say "Building merged header tree $HEADERS_TREE"
    tmp="$(mktemp -d "${HEADERS_TREE}.tmp.XXXXXX")"
    cp -rs "$common_dir/." "$tmp/"
    cp -rsf "$amd64_dir/." "$tmp/"
    echo "$want_stamp" > "$tmp/.sfcframe-headers"
    chmod 755 "$tmp"
    rm -rf "$HEADERS_TREE"
    mv "$tmp" "$HEADERS_TREE"
fi

moddir="/lib/modules/$KVER"
mkdir -p "$moddir"
link_if_absent() {  # link_if_absent LINK TARGET: never replaces a working build/source entry
    local link="$1" target="$2"
    if [[ -L "$link" && ! -e "$link" ]]; then
        note "replacing dangling symlink $link"
        rm -f "$link"
    fi
    if [[ -e "$link" ]]; then
        note "$link exists (-> $(readlink -f "$link"))"
    else
        ln -s "$target" "$link"
        note "created $link -> $target"
    fi
}
link_if_absent "$moddir/build" "$amd64_dir"
link_if_absent "$moddir/source" "$common_dir"

# ---------------------------------------------------------------------------------------
# bpffs
# ---------------------------------------------------------------------------------------
if mountpoint -q /sys/fs/bpf && [[ "$(stat -f -c %T /sys/fs/bpf)" == bpf_fs ]]; then
    note "bpffs already mounted at /sys/fs/bpf"
else
    say "Mounting bpffs at /sys/fs/bpf"
    mkdir -p /sys/fs/bpf
    mount -t bpf bpf /sys/fs/bpf || die "could not mount bpffs at /sys/fs/bpf"
fi

# ---------------------------------------------------------------------------------------
# Python virtualenv
# ---------------------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    say "Creating $VENV (--system-site-packages, for Debian's bcc)"
    rm -rf "$VENV"
    "$SYS_PYTHON" -m venv --system-site-packages "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi
echo "$HEADERS_TREE" > "$VENV/bcc-kernel-source"

cd "$REPO_ROOT"
if [[ ! -f pyproject.toml ]]; then
    say "No pyproject.toml yet: skipping pip install of sfcframe"
else
    plugin_dirs=()
    for f in plugins/*/pyproject.toml; do
        [[ -f "$f" ]] && plugin_dirs+=("$(dirname "$f")")
    done
    # Reinstall only when the extras below, pyproject.toml or a plugin's files changed
    # (sfcframe itself is editable, so its code changes need no reinstall; the plugins are
    # installed as copies). bench: matplotlib for `sfcframe bench` plots.
    PIP_EXTRAS="test,bench"
    want_hash="$( { echo "extras=$PIP_EXTRAS"
                    sha256sum pyproject.toml
                    if (( ${#plugin_dirs[@]} )); then
                        find "${plugin_dirs[@]}" -type f -not -path '*/__pycache__/*' \
                             -not -path '*.egg-info/*' -not -path '*/build/*' -not -path '*/dist/*' \
                             -print0 | sort -z | xargs -0 sha256sum
                    fi; } | sha256sum | cut -d' ' -f1)"
    pip_stamp="$VENV/.sfcframe-pip-stamp"
    if [[ "${SFCFRAME_FORCE_PIP:-0}" != 1 && -f "$pip_stamp" && "$(cat "$pip_stamp")" == "$want_hash" ]] \
       && "$VENV/bin/python" -c 'import sfcframe' 2>/dev/null; then
        note "Python packages up to date"
    else
        rm -f "$pip_stamp"
        say "pip install -e '.[$PIP_EXTRAS]'"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[$PIP_EXTRAS]"
        for d in "${plugin_dirs[@]}"; do
            say "pip install $d"
            "$VENV/bin/python" -m pip install -q --disable-pip-version-check "./$d"
        done
        echo "$want_hash" > "$pip_stamp"
    fi
fi

# ---------------------------------------------------------------------------------------
# Verification: bcc compiles and loads a program
# ---------------------------------------------------------------------------------------
say "Checking that bcc compiles a program (BCC_KERNEL_SOURCE=$HEADERS_TREE)"
if ! out="$(cd / && BCC_KERNEL_SOURCE="$HEADERS_TREE" "$VENV/bin/python" -c '
import bcc
from bcc import BPF
b = BPF(text="int f(void *ctx){return 0;}")
b.load_func("f", BPF.SOCKET_FILTER)
print(getattr(bcc, "__version__", "?"))
' 2>&1)"; then
    echo "$out" >&2
    die "bcc cannot compile/load a BPF program (see output above); check python3-bpfcc and $HEADERS_TREE"
fi
note "bcc $(echo "$out" | tail -1) OK"
say "Setup complete. Use $VENV/bin/python (BCC_KERNEL_SOURCE=$HEADERS_TREE)."
