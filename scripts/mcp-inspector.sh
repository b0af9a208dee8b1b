#!/usr/bin/env bash
# Installs the MCP Inspector (npm `@modelcontextprotocol/inspector`, pinned) into target/mcp-inspector,
# where crates/racejudge/tests/mcp_cli/inspector.rs finds its `mcp-inspector` command (or set
# RACEJUDGE_MCP_INSPECTOR to another one). The test runs `mcp-inspector --cli` against
# `racejudge mcp`: a real third-party client (the TypeScript SDK underneath), so it needs the real
# package; no stub stands in for it. Idempotent: an install of the pinned version is kept.
# Needs node and npm (v1 of the Inspector runs on Node 20; npm warns that it wants 22, harmlessly).
# Prints the path of the `mcp-inspector` command on success.
set -euo pipefail
cd "$(dirname "$0")/.."

# The last v1 release (v2 needs Node >= 22.19), and the TypeScript SDK under it (the part that
# validates results against output schemas; issue 14 used 1.32), pinned through npm `overrides`.
INSPECTOR_VERSION=1.0.3
SDK_VERSION=1.32.2
prefix=${RACEJUDGE_MCP_INSPECTOR_PREFIX:-target/mcp-inspector}
bin=$prefix/node_modules/.bin/mcp-inspector

version_of() {
    node -e 'process.stdout.write(require(process.argv[1]).version)' \
        "$PWD/$prefix/node_modules/@modelcontextprotocol/$1/package.json" 2>/dev/null
}

installed() {
    [[ -x $bin && $(version_of inspector) == "$INSPECTOR_VERSION" && $(version_of sdk) == "$SDK_VERSION" ]]
}

if installed; then
    echo "$bin"
    exit 0
fi

rm -rf "$prefix"
mkdir -p "$prefix"
# A package.json of its own, so npm installs here and not into an enclosing project.
cat >"$prefix/package.json" <<EOF
{"name": "racejudge-mcp-inspector", "private": true,
 "overrides": {"@modelcontextprotocol/sdk": "$SDK_VERSION"}}
EOF
npm install --prefix "$prefix" --save-exact --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" >&2
installed || {
    echo "mcp-inspector.sh: no $bin (Inspector $INSPECTOR_VERSION, SDK $SDK_VERSION) after npm install" >&2
    exit 1
}
echo "$bin"
