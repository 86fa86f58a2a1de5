"""Benchmark: tool-token validation, Roomkey's service beside signalwire-sdk's, and over HTTP.

1. In-process, in the same run and interleaved over a few rounds: the SDK's stateless
   `SessionManager.validate_token` and Roomkey's `tool_token_validate` for the same kind of
   token (signature, function, call, expiry, then the session and the registry: revocation and
   max-uses checks included). Roomkey is measured as configured by default (what it read
   about the session and token kept for ROOMKEY_AGENTS["TOOL_STATE_CACHE_SECONDS"]), with that cache
   off (every validation reads the database), and for a token with `max_uses` (every
   validation is a conditional UPDATE). Prints µs per validation and the ratio to the SDK;
   the target is a ratio of at most 3 for the default configuration.
2. Over HTTP: `POST /api/v1/tool-tokens/validate` under uvicorn beside a trivial
   authenticated endpoint (`/bench/ping`), concurrent keep-alive clients, alternating rounds;
   prints req/s, p50/p99 and the ratio.

    make bench                     # or: .venv/bin/python -m bench.tool_tokens
    BENCH_TOOL_BACKEND=postgres make bench

Environment: BENCH_TOOL_ITERATIONS (SDK and cached Roomkey validations per round; 20000),
BENCH_TOOL_DB_ITERATIONS (uncached and max-uses validations per round; 1000), BENCH_ROUNDS (4
here), BENCH_REQUESTS (HTTP, per endpoint; 1200), BENCH_CONCURRENCY (16),
BENCH_TOOL_BACKEND ("sqlite" or "postgres"; sqlite), BENCH_POSTGRES_URL
(postgres://postgres@127.0.0.1:5432/roomkey_bench).

Exit status: 0 when everything ran (whether or not the target was met, which is printed), 1
when a validation gave a wrong answer or a request failed, 2 when setup failed.
"""

import asyncio
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.chat_tokens import (
    SetupError,
    free_port,
    manage,
    percentile,
    postgres_reset,
    run_async,
    server_env,
    start_server,
    stop_server,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "last-tool_tokens.json"

ITERATIONS = int(os.environ.get("BENCH_TOOL_ITERATIONS", "20000"))
DB_ITERATIONS = int(os.environ.get("BENCH_TOOL_DB_ITERATIONS", "1000"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "4")))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1200"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
BACKEND = os.environ.get("BENCH_TOOL_BACKEND", "sqlite")
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/roomkey_bench"
)
TARGET_RATIO = 3.0
CALL_ID = "bench-call.1"
FUNCTION = "get_weather"


def database_url(workdir: Path, name: str) -> str:
    if BACKEND == "postgres":
        url = POSTGRES_URL.rstrip("/") + f"_{name}"
        postgres_reset(url)
        return url
    return f"sqlite:///{workdir / (name + '.sqlite3')}"


# --- 1. In-process ------------------------------------------------------------------------


def in_process(url: str) -> dict:
    os.environ.update(server_env(url))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import override_settings
    from signalwire.core.security.session_manager import SessionManager as Sdk

    from agents import services as agent_services
    from agents import tooltokens
    from tokens import services as token_services

    call_command("migrate", verbosity=0)
    project, _ = token_services.project_create(name=f"bench-{secrets.token_hex(4)}")
    session = agent_services.call_session_create(project=project, call_id=CALL_ID)
    secret = agent_services.tool_secret_get_or_create(project=project).secret
    plain = agent_services.tool_token_issue(session=session, function=FUNCTION, ttl=3600).token
    limited = agent_services.tool_token_issue(
        session=session, function=FUNCTION, ttl=3600, max_uses=1_000_000
    ).token
    sdk = Sdk(secret_key=secret)
    sdk_token = sdk.generate_token(FUNCTION, CALL_ID)

    def roomkey(token):
        return lambda: (
            agent_services.tool_token_validate(
                project=project, call_id=CALL_ID, function=FUNCTION, token=token
            ).valid
        )

    cases = {
        "sdk validate_token": (lambda: sdk.validate_token(CALL_ID, FUNCTION, plain), ITERATIONS),
        "roomkey (default: state cached)": (roomkey(plain), ITERATIONS),
        "roomkey, SDK-minted token": (roomkey(sdk_token), ITERATIONS),
        "roomkey, cache off": (roomkey(plain), DB_ITERATIONS),
        "roomkey, max_uses token": (roomkey(limited), DB_ITERATIONS),
    }
    uncached = {"cache off", "max_uses"}
    seconds = dict.fromkeys(cases, 0.0)
    counts = dict.fromkeys(cases, 0)
    wrong = 0
    for _ in range(ROUNDS):
        for name, (validate, n) in cases.items():
            off = any(word in name for word in uncached)
            ttl = 0 if off else 1.0
            with override_settings(ROOMKEY_AGENTS={"TOOL_STATE_CACHE_SECONDS": ttl}):
                tooltokens.forget_all()
                wrong += not validate()  # warm (and check) once
                start = time.perf_counter()
                for _ in range(n):
                    validate()
                seconds[name] += time.perf_counter() - start
                counts[name] += n
                wrong += not validate()
    per_op = {name: seconds[name] / counts[name] * 1e6 for name in cases}
    base = per_op["sdk validate_token"]
    return {
        "backend": BACKEND,
        "us_per_validation": {k: round(v, 2) for k, v in per_op.items()},
        "ratio_to_sdk": {k: round(v / base, 2) for k, v in per_op.items()},
        "validations": counts,
        "wrong_answers": wrong,
    }


# --- 2. Over HTTP -------------------------------------------------------------------------


async def _phase(clients, path: str, body: bytes, marker: bytes, n: int) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    remaining = n

    async def worker(client):
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            try:
                response = await client.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
                ok = response.status_code == 200 and marker in response.content
                problem = f"HTTP {response.status_code}: {response.content[:100]!r}"
            except httpx.HTTPError as exc:
                ok, problem = False, f"{type(exc).__name__}: {exc}"
            latencies.append(time.perf_counter() - start)
            if not ok:
                failures.append(problem)

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return {"seconds": time.perf_counter() - start, "latencies": latencies, "failures": failures}


async def _drive(base: str, api_key: str, token: str) -> dict:
    clients = [
        httpx.AsyncClient(
            base_url=base,
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30,
        )
        for _ in range(CONCURRENCY)
    ]
    body = json.dumps({"call_id": CALL_ID, "function": FUNCTION, "token": token}).encode()
    endpoints = {
        "trivial": ("/bench/ping", body, b'"ok"'),
        "validate": ("/api/v1/tool-tokens/validate", body, b'"valid":true'),
    }
    try:
        for path, payload, marker in endpoints.values():  # warm-up
            await _phase(clients, path, payload, marker, 100)
        totals = {name: {"seconds": 0.0, "latencies": [], "failures": []} for name in endpoints}
        for i in range(ROUNDS):
            n = REQUESTS // ROUNDS + (i < REQUESTS % ROUNDS)
            for name, (path, payload, marker) in endpoints.items():
                result = await _phase(clients, path, payload, marker, n)
                totals[name]["seconds"] += result["seconds"]
                totals[name]["latencies"] += result["latencies"]
                totals[name]["failures"] += result["failures"]
    finally:
        for client in clients:
            await client.aclose()
    out = {}
    for name, t in totals.items():
        count = len(t["latencies"])
        out[name] = {
            "requests": count,
            "req_per_s": round(count / t["seconds"], 1) if t["seconds"] else 0.0,
            "p50_ms": round(percentile(t["latencies"], 50) * 1000, 2),
            "p99_ms": round(percentile(t["latencies"], 99) * 1000, 2),
            "failures": len(t["failures"]),
            "failure_samples": t["failures"][:3],
        }
    return out


def over_http(url: str, workdir: Path) -> dict:
    env = server_env(url)
    manage(env, "migrate", "--noinput")
    created = json.loads(manage(env, "createproject", "bench-http", "--json").strip())
    api_key = created["api_key"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "uvicorn-tool.log"
    with log_path.open("wb") as log:
        proc = start_server(env, port, log)
        try:
            headers = {"Authorization": f"Bearer {api_key}"}
            deadline = time.monotonic() + 30
            while True:
                try:
                    made = httpx.post(
                        base + "/api/v1/sessions", json={"call_id": CALL_ID}, headers=headers
                    )
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        log_text = log_path.read_text()
                        raise SetupError(f"uvicorn did not start:\n{log_text}") from None
                    time.sleep(0.1)
            if made.status_code != 201:
                raise SetupError(f"session: {made.status_code} {made.text}")
            issued = httpx.post(
                f"{base}/api/v1/sessions/{CALL_ID}/tool-tokens",
                json={"function": FUNCTION, "ttl": 3600},
                headers=headers,
            )
            if issued.status_code != 201:
                raise SetupError(f"tool token: {issued.status_code} {issued.text}")
            results = run_async(_drive(base, api_key, issued.json()["token"]))
        finally:
            stop_server(proc)
    trivial, validate = results["trivial"]["req_per_s"], results["validate"]["req_per_s"]
    results["ratio_validate_to_trivial"] = round(validate / trivial, 3) if trivial else None
    return results


def main() -> int:
    import django

    print(
        f"Tool-token validation benchmark — {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU, Python {platform.python_version()}, backend {BACKEND}"
    )
    with tempfile.TemporaryDirectory(prefix="roomkey-toolbench-") as tmp:
        workdir = Path(tmp)
        try:
            http_url = database_url(workdir, "http")
            http = over_http(http_url, workdir)
            local = in_process(database_url(workdir, "inproc"))
        except (SetupError, ConnectionError) as exc:
            print(f"setup failed: {exc}", file=sys.stderr)
            return 2
    print(f"Django {django.get_version()}\n")
    print(f"In-process, {ROUNDS} interleaved rounds:")
    print(f"  {'validator':<34} {'µs/validation':>14} {'x SDK':>7}")
    for name, us in local["us_per_validation"].items():
        print(f"  {name:<34} {us:>14.2f} {local['ratio_to_sdk'][name]:>7.2f}")
    ratio = local["ratio_to_sdk"]["roomkey (default: state cached)"]
    met = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"\nRoomkey / SDK validation time: {ratio:.2f}x (target <= {TARGET_RATIO:g}x: {met})\n")
    print(f"HTTP, uvicorn, {CONCURRENCY} concurrent keep-alive clients:")
    for name in ("trivial", "validate"):
        r = http[name]
        print(
            f"  {name:<10} {r['req_per_s']:>8.1f} req/s   p50 {r['p50_ms']:>7.2f} ms   "
            f"p99 {r['p99_ms']:>7.2f} ms   failures {r['failures']}"
        )
    print(f"  POST /api/v1/tool-tokens/validate / trivial: {http['ratio_validate_to_trivial']}")
    RESULTS.write_text(json.dumps({"in_process": local, "http": http}, indent=2))
    print(f"\nWritten to {RESULTS.relative_to(ROOT)}")
    failed = local["wrong_answers"] or any(http[n]["failures"] for n in ("trivial", "validate"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
