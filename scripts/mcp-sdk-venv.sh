#!/usr/bin/env bash
# Installs the official MCP Python SDK (PyPI `mcp`, pinned) into target/mcp-sdk-venv, where
# crates/racejudge/tests/mcp_sdk.rs finds it (or set RACEJUDGE_MCP_SDK_PYTHON to another python).
# The test drives `racejudge mcp` with a real third-party client, so it needs the real package:
# no stub stands in for it. Idempotent: an existing venv with the pinned version is kept.
# Prints the venv's python on success.
set -euo pipefail
cd "$(dirname "$0")/.."

MCP_VERSION=2.3.0
venv=${RACEJUDGE_MCP_SDK_VENV:-target/mcp-sdk-venv}
python=$venv/bin/python

if [[ -x $python ]] && "$python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$MCP_VERSION')" 2>/dev/null; then
    echo "$python"
    exit 0
fi

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_VERSION" >&2
"$python" -c "import mcp.client.stdio, mcp.client.streamable_http" >&2
echo "$python"
