"""Benchmark: what rate limiting costs an issuance request, limits on against limits off.

Two uvicorn processes on one database, alike but for ROOMKEY_RATE_LIMITS: on one, every
`POST /api/chat/tokens` is checked (the address's failed-authentication budget and its count
and the API key's, in one round trip, RateLimit-* headers on the answer), at rates far above
what the benchmark sends, so nothing is refused; the other checks nothing. They serve side by
side, each with its own concurrent clients, in rounds of the same run, so that whatever else
the machine does weighs on both alike. Printed: req/s, p50/p99 and server CPU per request of
each, and the ratios on / off. Target: limiting adds at most 5 % to an issuance request's
server time: CPU ms per request, on / off ≤ 1.05, as the median of the rounds' ratios (the
ratio of the totals is printed too).

Backends: SQLite with the in-memory cache (the embedded default: counters in the server's
memory) and PostgreSQL with Redis (production: one Lua round trip per check), per
BENCH_BACKENDS as bench/chat_tokens.py, Redis as bench/chat_history.py (BENCH_REDIS_URL, else
REDIS_URL, else redis://127.0.0.1:6379/0; keys prefixed per run); without Redis the PostgreSQL
run counts in memory and says so.

    make bench                                  # all benchmarks
    .venv/bin/python -m bench.limits            # this one, about a minute per backend
    BENCH_BACKENDS=postgres BENCH_REQUESTS=3000 .venv/bin/python -m bench.limits

Environment: BENCH_REQUESTS (per server, over all rounds; 2400), BENCH_ROUNDS (12),
BENCH_CONCURRENCY (per server), BENCH_WARMUP, BENCH_BACKENDS, BENCH_POSTGRES_URL as
bench/chat_tokens.py.
Exit status: 0 when every request succeeded (target met or not: it is printed), 1 when any
failed, 2 when a server could not be set up.
"""

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

from bench.chat_history import REDIS_URL, bench_env, redis_ping
from bench.chat_tokens import (
    CONCURRENCY,
    ISSUE_BODY,
    REQUEST_TIMEOUT,
    WARMUP,
    Phase,
    bench_backends,
    create_project,
    free_port,
    machine,
    manage,
    run_async,
    run_phase,
    server_env,
    start_server,
    stop_server,
    summary,
    wait_ready,
    write_results,
)

RESULTS = Path(__file__).resolve().parent / "last-limits.json"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2400"))
ROUNDS = max(2, int(os.environ.get("BENCH_ROUNDS", "12")))
TARGET = 1.05  # server CPU per request, limits on / off
PATH = "/api/chat/tokens"


async def drive(servers: dict, api_key: str):
    """servers: name -> (base url, pid). Warm-ups, then measured rounds in which both servers
    serve at once, each its own clients: returns the warm-ups, the totals and each round's
    phases, per server."""
    clients = {
        name: [
            httpx.AsyncClient(
                base_url=base,
                headers={"Authorization": f"Bearer {api_key}"},
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                timeout=REQUEST_TIMEOUT,
            )
            for _ in range(CONCURRENCY)
        ]
        for name, (base, _) in servers.items()
    }

    async def side_by_side(n: int) -> dict[str, Phase]:
        phases = await asyncio.gather(
            *(
                run_phase(clients[name], PATH, b'"token"', n, pid)
                for name, (_, pid) in servers.items()
            )
        )
        return dict(zip(servers, phases, strict=True))

    try:
        warm = await side_by_side(WARMUP)
        totals = {name: Phase(requests=0) for name in servers}
        rounds: list[dict[str, Phase]] = []
        for i in range(ROUNDS):
            rounds.append(await side_by_side(REQUESTS // ROUNDS + (i < REQUESTS % ROUNDS)))
            for name, phase in rounds[-1].items():
                totals[name].add(phase)
        return warm, totals, rounds
    finally:
        for group in clients.values():
            for client in group:
                await client.aclose()


def bench_backend(label: str, database_url: str, workdir: Path) -> dict:
    env, counters = server_env(database_url), "the in-memory cache"
    if label == "postgresql":
        try:
            redis_ping(REDIS_URL)
            env, counters = bench_env(database_url), f"Redis ({REDIS_URL})"
        except ConnectionError as exc:
            counters = f"the in-memory cache ({exc})"
    manage(env, "migrate", "--noinput")
    api_key = create_project(env)["api_key"]
    envs = {"limits on": {**env, "ROOMKEY_RATE_LIMITS": "true"}}
    envs["limits off"] = {**env, "ROOMKEY_RATE_LIMITS": "false"}
    procs, servers = {}, {}
    logs = {name: (workdir / f"uvicorn-{label}-{name.replace(' ', '-')}.log") for name in envs}
    try:
        for name, server_environment in envs.items():
            port = free_port()
            procs[name] = start_server(server_environment, port, logs[name].open("wb"))
            servers[name] = (f"http://127.0.0.1:{port}", procs[name].pid)
        for name, (base, _) in servers.items():
            run_async(wait_ready(procs[name], base, api_key, logs[name]))
        warm, totals, rounds = run_async(drive(servers, api_key))
    finally:
        for proc in procs.values():
            stop_server(proc)
    results = {name: summary(phase) for name, phase in totals.items()}
    for name, phase in warm.items():
        results[name]["warmup_failures"] = phase.failures
    on, off = results["limits on"], results["limits off"]
    cpu_on, cpu_off = on["server_cpu_ms_per_req"], off["server_cpu_ms_per_req"]
    # Each round's two phases ran at the same time: whatever else the machine did weighed on
    # both, and the median of the rounds is what one interference cannot move.
    paired = [
        r["limits on"].server_cpu / r["limits off"].server_cpu
        for r in rounds
        if r["limits on"].server_cpu and r["limits off"].server_cpu
    ]
    return {
        "backend": label,
        "counters": counters,
        "endpoints": results,
        "cpu_ratio": round(statistics.median(paired), 3) if paired else None,
        "cpu_ratio_per_round": [round(x, 3) for x in paired],
        "cpu_ratio_of_totals": round(cpu_on / cpu_off, 3) if cpu_on and cpu_off else None,
        "throughput_ratio": round(on["req_per_s"] / off["req_per_s"], 3)
        if off["req_per_s"]
        else None,
        "p50_ratio": round(on["p50_ms"] / off["p50_ms"], 3) if off["p50_ms"] else None,
        "server_log_tail": "\n".join(logs[n].read_text(errors="replace")[-600:] for n in logs),
    }


def print_report(info: dict, runs: list[dict], skipped: dict, errors: list[str]) -> None:
    print()
    print(
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}; "
        f"Django {info['django']}, uvicorn {info['uvicorn']}; PostgreSQL "
        f"{info['postgresql'] or 'n/a'}; load average at end "
        f"{' '.join(info['load_average_at_end'] or ['n/a'])}"
    )
    print(
        f"Run: POST {PATH}, {REQUESTS} requests per server in {ROUNDS} rounds, both servers "
        f"at once, {CONCURRENCY} concurrent keep-alive connections each, {WARMUP} warm-up "
        "requests each."
    )
    print()
    header = (
        f"{'backend':<10} {'server':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU ms/req':>14} {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        for name, r in run["endpoints"].items():
            cpu = r["server_cpu_ms_per_req"]
            print(
                f"{run['backend']:<10} {name:<10} {r['req_per_s']:>8.1f} {r['p50_ms']:>8.2f} "
                f"{r['p99_ms']:>8.2f} {'n/a' if cpu is None else f'{cpu:.2f}':>14} "
                f"{r['failures'] + r['warmup_failures']:>6}"
            )
    print()
    for run in runs:
        ratio = run["cpu_ratio"]
        verdict = "n/a" if ratio is None else ("met" if ratio <= TARGET else "NOT met")
        print(
            f"{run['backend']} (counters in {run['counters']}): server CPU per issuance, "
            f"limits on / off = {'n/a' if ratio is None else f'{ratio:.3f}'} (median of the "
            f"rounds; of the totals {run['cpu_ratio_of_totals']}) (target <= {TARGET}: "
            f"{verdict}); throughput on / off = {run['throughput_ratio']}; p50 on / off = "
            f"{run['p50_ratio']}"
        )
    for label, reason in skipped.items():
        print(f"{label}: SKIPPED ({reason})")
    for error in errors:
        print(f"ERROR: {error}")


def main() -> int:
    skipped: dict[str, str] = {}
    errors: list[str] = []
    began = time.monotonic()
    runs, pg_version = bench_backends(
        bench_backend, prefix="roomkey-bench-limits-", skipped=skipped, errors=errors
    )
    info = machine(pg_version)
    print_report(info, runs, skipped, errors)
    failures = write_results(
        RESULTS,
        "limits",
        began=began,
        info=info,
        config={"path": PATH, "body": ISSUE_BODY, "requests_per_server": REQUESTS},
        runs=runs,
        skipped=skipped,
        errors=errors,
        target={"max_cpu_ratio": TARGET},
    )
    if failures:
        print(f"FAILED: {failures} requests did not get a 200 (warm-up included).")
        return 1
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
