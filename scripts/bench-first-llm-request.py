#!/usr/bin/env python3
"""Benchmark: report -> first LLM request, from a local git mirror with a cold cache.

Starts a one-shot OpenAI-compatible endpoint on 127.0.0.1 that records when the first
chat-completions request arrives (and answers it with an HTTP 400, which ends the run), then runs
`racejudge assess --expert llm --provider openai --repo MIRROR --commit SHA` with a fresh, empty
RACEJUDGE_CACHE_DIR, so the time includes the checkout and a cold index.

    scripts/bench-first-llm-request.py MIRROR COMMIT REPORT [--racejudge target/release/racejudge]

Prints one JSON document: seconds from start to the first request, and the exit code.
"""

import argparse
import http.server
import json
import os
import subprocess
import tempfile
import threading
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror")
    parser.add_argument("commit")
    parser.add_argument("report")
    parser.add_argument("--racejudge", default="target/release/racejudge")
    args = parser.parse_args()

    first_request = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            first_request.setdefault("at", time.monotonic())
            first_request.setdefault("path", self.path)
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            first_request.setdefault("tools", len(body.get("tools", [])))
            reply = json.dumps({"error": {"message": "benchmark endpoint: stop here", "type": "invalid_request_error"}}).encode()
            self.send_response(400)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    with tempfile.TemporaryDirectory(prefix="racejudge-bench-") as cache:
        env = dict(os.environ)
        env.update(
            RACEJUDGE_CACHE_DIR=cache,
            OPENAI_BASE_URL=f"http://127.0.0.1:{server.server_port}/v1",
            OPENAI_API_KEY="bench-key",
        )
        start = time.monotonic()
        proc = subprocess.run(
            [args.racejudge, "assess", args.report, "--repo", args.mirror, "--commit", args.commit,
             "--expert", "llm", "--provider", "openai", "--model", "bench-model"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        end = time.monotonic()
    server.shutdown()

    result = {
        "seconds_to_first_llm_request": round(first_request["at"] - start, 2) if "at" in first_request else None,
        "tools_declared": first_request.get("tools"),
        "total_seconds": round(end - start, 2),
        "exit_code": proc.returncode,
        "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.stderr else [],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
