#!/usr/bin/env bash
# The project's test command (README "Run the tests"). Makes sure Debian's linux-source-6.12 is
# unpacked in the racejudge cache (the real-tree integration tests read it; without it they skip
# with a visible message), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

if kernel=$(./scripts/fetch-kernel-source.sh); then
    echo "kernel tree: $kernel"
else
    echo "warning: no linux-source-6.12 tree; real-tree tests will be skipped" >&2
fi

cargo test --workspace --locked "$@"
