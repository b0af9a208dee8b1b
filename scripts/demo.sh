#!/usr/bin/env bash
# The main job on embedded defaults (README "Quick start"): Debian's linux-source-6.12 as the kernel,
# the offline static expert, no API key. Installs/unpacks the kernel source once (cached), builds
# racejudge, and assesses an example report shipped in the repository.
#
#   ./scripts/demo.sh [REPORT]        default: examples/reports/smc_switch_to_fallback-sock_poll.txt
set -euo pipefail
cd "$(dirname "$0")/.."

report=${1:-examples/reports/smc_switch_to_fallback-sock_poll.txt}
kernel=$(./scripts/fetch-kernel-source.sh)
cargo build --release --locked --quiet
exec ./target/release/racejudge assess "$report" --kernel "$kernel"
