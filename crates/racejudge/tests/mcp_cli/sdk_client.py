"""Drives `racejudge mcp` with the official MCP Python SDK (PyPI `mcp`), for mcp_cli/sdk.rs.

Usage: sdk_client.py stdio RACEJUDGE_BIN KERNEL_TREE CALLS_JSON
       sdk_client.py http URL CALLS_JSON

CALLS_JSON is a list of {"tool": name, "arguments": {...}}. The SDK itself checks every
successful structured result against the tool's outputSchema (ClientSession.call_tool raises
when it does not match), which is what this driver exists to exercise. It prints one JSON
object on stdout: the negotiated protocol, the tools listed, and per call whether the SDK
accepted the result, whether it was an error result, its text, or the exception the SDK raised.
The Rust test judges; this script only reports.
"""

import json
import os
import sys
from importlib.metadata import version

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


async def run_session(read_stream, write_stream, calls):
    report = {"sdk_version": version("mcp"), "calls": []}
    async with ClientSession(read_stream, write_stream) as session:
        init = await session.initialize()
        report["protocol"] = init.protocol_version
        report["server"] = init.server_info.name
        listed = await session.list_tools()
        report["tools"] = [
            {"name": t.name, "has_output_schema": t.output_schema is not None} for t in listed.tools
        ]
        for call in calls:
            entry = {"tool": call["tool"], "arguments": call["arguments"]}
            try:
                result = await session.call_tool(call["tool"], call["arguments"])
                entry["accepted"] = True
                entry["is_error"] = bool(result.is_error)
                entry["text"] = "".join(
                    getattr(block, "text", "") for block in result.content
                )
                entry["structured"] = result.structured_content
            except Exception as e:  # the SDK's refusal is the finding, so keep it whole
                entry["accepted"] = False
                entry["exception"] = f"{type(e).__name__}: {e}"
            report["calls"].append(entry)
    return report


async def main():
    mode = sys.argv[1]
    if mode == "stdio":
        binary, tree, calls = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
        params = StdioServerParameters(
            command=binary,
            args=["mcp", "--kernel", tree],
            env={k: v for k, v in os.environ.items() if k.startswith("RACEJUDGE_")},
        )
        async with stdio_client(params) as (read_stream, write_stream):
            report = await run_session(read_stream, write_stream, calls)
    elif mode == "http":
        url, calls = sys.argv[2], json.loads(sys.argv[3])
        async with streamable_http_client(url) as streams:
            report = await run_session(streams[0], streams[1], calls)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(report))


if __name__ == "__main__":
    anyio.run(main)
