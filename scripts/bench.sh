#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md in one go (`make bench`): set up this machine (idempotent),
# run each `sfcframe bench` with the parameters the published tables were made with, then
# redraw the plots and rewrite the generated tables. Needs root. About 17 minutes on a
# 2-core machine; every step prints its own progress and wall time.
# Results: bench-results/<name>.json + .png, tables in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
export BCC_KERNEL_SOURCE="${BCC_KERNEL_SOURCE:-/usr/src/sfcframe-kernel-headers}"
SFC=(.venv/bin/python -m sfcframe.bench)
start=$(date +%s)
step() {
    local t0=$(date +%s)
    echo "== sfcframe bench $*"
    "${SFC[@]}" "$@"
    echo "== $1: $(( $(date +%s) - t0 )) s"
}
step memory
step evict --cache-sizes 10000,100000
step cost
step cost --breakdown
step cost --keys --repeat 15
step goodput
step drop --runs 3 --seconds 6
step delay --seconds 6
step collisions --runs 3 --seconds 6
step collisions --encap srv6 --inner ipv4 --runs 5 --seconds 6
step collisions --encap srv6 --inner ipv6 --runs 5 --seconds 6
step collisions --encap srv6 --inner ipv4 --ingress xdp --runs 5 --seconds 6
step collisions --encap srv6 --inner ipv6 --ingress xdp --runs 5 --seconds 6
step collisions --traffic rtp --runs 3 --seconds 6
step collisions --traffic udp --runs 3 --seconds 6
step collisions --traffic esp --runs 3 --seconds 6
step collisions --traffic icmp --runs 3 --seconds 6
step collisions --traffic mixed --runs 3 --seconds 6
step collisions --traffic udpsame --runs 3 --seconds 6
step collisions --traffic rtp --vnf delay --runs 3 --seconds 6
step collisions --traffic udp --vnf delay --runs 3 --seconds 6
step collisions --traffic esp --vnf delay --runs 3 --seconds 6
step collisions --traffic icmp --vnf delay --runs 3 --seconds 6
step collisions --traffic mixed --vnf delay --runs 3 --seconds 6
step collisions --traffic udpsame --vnf delay --runs 3 --seconds 6
step srv6 --runs 3 --seconds 5
step report
echo "== all benchmarks: $(( $(date +%s) - start )) s"
