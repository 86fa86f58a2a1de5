"""Benchmark: voice-session and web-call issuance against the trivial authenticated endpoint.

Same method as bench/chat_tokens.py, whose helpers it imports: one uvicorn process (URLconf
`bench.urls`), the same run, rounds alternating the endpoints, on SQLite and PostgreSQL. The
endpoints:

- trivial         POST /bench/ping (API-key auth, a parsed JSON body, `{"ok": true}`)
- session ws      POST /v1/session-token, transport websocket: a VoiceSession row and a
                  voice-session JWT with its registry row
- session webrtc  POST /v1/session-token, transport webrtc: a Room, a LiveKit token with
                  agent dispatch, its registry row
- web call        POST /web_call/get_token: templates filled, a Room, a LiveKit token

Prints req/s, p50/p99, server CPU per request and each endpoint's throughput as a ratio of the
trivial endpoint's. No target is set for these ratios: each issuance writes two rows (the
chat token writes one), and the numbers are for comparison between runs.

    make bench                                   # chat tokens, then this
    .venv/bin/python -m bench.voice_tokens
    BENCH_BACKENDS=postgres BENCH_REQUESTS=600 .venv/bin/python -m bench.voice_tokens

Environment: as bench/chat_tokens.py (BENCH_REQUESTS per endpoint, BENCH_ROUNDS,
BENCH_CONCURRENCY, BENCH_WARMUP, BENCH_BACKENDS, BENCH_POSTGRES_URL). Exit status: 0 when every
request succeeded, 1 when any failed, 2 when a server could not be set up.
"""

import json
import secrets
import sys
import time
from pathlib import Path

from bench.chat_tokens import (
    CONCURRENCY,
    REQUESTS,
    ROUNDS,
    WARMUP,
    bench_backends,
    create_project,
    machine,
    manage,
    measure,
    write_results,
)
from bench.chat_tokens import server_env as chat_server_env

RESULTS = Path(__file__).resolve().parent / "last-voice_tokens.json"

SETUP_SCRIPT = """
import json
from agents import services
from agents.models import Agent, Assistant
from tokens.models import Project
project = Project.objects.get(name="bench")
agent = Agent.objects.create(project=project, name="Bench agent", dispatch_name="bench-agent")
version = services.agent_version_create(
    agent=agent, prompt="You are a benchmark agent. " * 20, first_message="Hello!"
)
services.agent_version_publish(version=version)
version.refresh_from_db()
services.agent_set_active_version(agent=agent, version=version)
assistant = Assistant.objects.create(
    project=project, name="Bench assistant", dispatch_name="bench-assistant",
    prompt_template="You help {{name}} on the {{plan}} plan. " * 20,
    first_message_template="Hi {{name}}!",
)
print(json.dumps({"agent_id": str(agent.pk), "assistant_id": str(assistant.pk)}))
"""


def endpoints(ids: dict) -> dict[str, tuple[str, bytes, dict]]:
    """name -> (path, marker in a good answer, body)."""
    session = {"agent_id": ids["agent_id"]}
    return {
        # The trivial endpoint parses the same body as the websocket session token.
        "trivial": ("/bench/ping", b'"ok"', session),
        "session ws": ("/v1/session-token", b'"token"', session),
        "session webrtc": (
            "/v1/session-token",
            b'"room"',
            {**session, "transport": "webrtc", "first_message": "Hi from the bench"},
        ),
        "web call": (
            "/web_call/get_token",
            b'"room_name"',
            {"assistant_id": ids["assistant_id"], "metadata": {"name": "Ada", "plan": "gold"}},
        ),
    }


def server_env(database_url: str) -> dict[str, str]:
    env = chat_server_env(database_url)
    # Production settings have no LiveKit defaults; the bench brings its own (never used to
    # reach a LiveKit server, only to sign).
    env.update(
        LIVEKIT_URL="ws://127.0.0.1:7880",
        LIVEKIT_API_KEY="benchkey",
        LIVEKIT_API_SECRET=secrets.token_urlsafe(32),
    )
    return env


def bench_backend(label: str, database_url: str, workdir: Path) -> dict:
    env = server_env(database_url)
    manage(env, "migrate", "--noinput")
    api_key = create_project(env)["api_key"]
    ids = json.loads(manage(env, "shell", "-c", SETUP_SCRIPT).strip().splitlines()[-1])
    results, server_log = measure(
        env, api_key, workdir / f"uvicorn-voice-{label}.log", endpoints(ids)
    )
    trivial = results["trivial"]["req_per_s"]
    return {
        "backend": label,
        "endpoints": results,
        "ratios": {
            name: round(r["req_per_s"] / trivial, 3) if trivial else None
            for name, r in results.items()
            if name != "trivial"
        },
        "server_log_tail": server_log[-2000:],
    }


def print_report(info: dict, runs: list[dict], skipped: dict, errors: list[str]) -> None:
    print()
    print(
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}; "
        f"Django {info['django']}; uvicorn {info['uvicorn']}; SQLite {info['sqlite']}; "
        f"PostgreSQL {info['postgresql'] or 'n/a'}; load average at end "
        f"{' '.join(info['load_average_at_end'] or ['n/a'])}"
    )
    print(
        f"Run: {REQUESTS} requests per endpoint in {ROUNDS} alternating rounds, "
        f"{CONCURRENCY} concurrent keep-alive connections, {WARMUP} warm-up requests each."
    )
    print()
    header = (
        f"{'backend':<10} {'endpoint':<15} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU ms/req':>14} {'ratio':>6} {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        for name, r in run["endpoints"].items():
            cpu = r["server_cpu_ms_per_req"]
            ratio = run["ratios"].get(name)
            print(
                f"{run['backend']:<10} {name:<15} {r['req_per_s']:>8.1f} {r['p50_ms']:>8.2f} "
                f"{r['p99_ms']:>8.2f} {'n/a' if cpu is None else f'{cpu:.2f}':>14} "
                f"{'-' if ratio is None else f'{ratio:.2f}':>6} {r['failures']:>6}"
            )
    print("\nratio = endpoint throughput / trivial endpoint throughput, same run.")
    for label, reason in skipped.items():
        print(f"{label}: SKIPPED ({reason})")
    for error in errors:
        print(f"ERROR: {error}")
    for run in runs:
        for name, r in run["endpoints"].items():
            if r["failures"] or r["warmup_failures"]:
                print(f"FAILED: {run['backend']} {name}: {r['failure_samples'][:3]}")


def main() -> int:
    skipped, errors = {}, []
    began = time.monotonic()
    runs, pg_version = bench_backends(
        bench_backend, prefix="roomkey-bench-voice-", skipped=skipped, errors=errors
    )
    info = machine(pg_version)
    print_report(info, runs, skipped, errors)
    failures = write_results(
        RESULTS,
        "voice_tokens",
        began=began,
        info=info,
        config={},
        runs=runs,
        skipped=skipped,
        errors=errors,
    )
    if failures:
        return 1
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
