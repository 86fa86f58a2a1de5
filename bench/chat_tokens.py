"""Benchmark: POST /api/chat/tokens against a trivial authenticated DRF endpoint.

Both are served by the same uvicorn process in the same run (URLconf `bench.urls`), on
SQLite (a fresh temporary file) and on PostgreSQL (a fresh `roomkey_bench` database;
skipped if the server cannot be reached). Concurrent keep-alive clients (httpx) send a
fixed number of requests to each endpoint, alternating the endpoints over a few rounds so
that drift hits both alike. Prints req/s, p50 and p99 of each and the ratio of issuance to
trivial throughput; the target is a ratio of at least 0.8 on PostgreSQL.

    make bench                      # or: .venv/bin/python -m bench.chat_tokens
    BENCH_REQUESTS=3000 BENCH_CONCURRENCY=32 make bench

Environment: BENCH_REQUESTS (per endpoint, over all rounds; 1800), BENCH_ROUNDS (6),
BENCH_CONCURRENCY (16), BENCH_WARMUP (per endpoint; 200), BENCH_BACKENDS
("sqlite,postgres"), BENCH_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/roomkey_bench).
The server inherits this environment apart from the variables the bench sets (see
server_env), so e.g. `DJANGO_DB_POOL_MAX=32 make bench` measures that setting.

Exit status: 0 when every request succeeded (whether or not the target was met, which is
printed), 1 when any request failed, 2 when a server could not be set up.
"""

import asyncio
import json
import math
import os
import platform
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "last-chat_tokens.json"

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1800"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "6")))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "200"))
BACKENDS = [
    b.strip() for b in os.environ.get("BENCH_BACKENDS", "sqlite,postgres").split(",") if b.strip()
]
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/roomkey_bench"
)

TARGET_RATIO = 0.8  # issuance / trivial throughput, on PostgreSQL
SETUP_TIMEOUT = 120  # seconds, per management command
READY_TIMEOUT = 30  # seconds for the server to answer
PHASE_TIMEOUT = 90  # seconds for one round of one endpoint; a hung server fails the run
REQUEST_TIMEOUT = 30

ISSUE_BODY = {
    "ttl": 60,
    "channels": {"general": {"read": True, "write": True}},
    "member_id": "bench",
}
# Both endpoints get the same body, so both parse the same JSON; issuance differs only by
# validating it and issuing the token.
ENDPOINTS = {
    "trivial": ("/bench/ping", b'"ok"'),
    "issuance": ("/api/chat/tokens", b'"token"'),
}


BENCH_RATES = ",".join(
    f"{scope}=100000000/min"
    for scope in ("issue", "validate", "introspect", "revoke", "chat", "api")
)


class SetupError(Exception):
    pass


# --- Measuring ----------------------------------------------------------------------------


@dataclass
class Phase:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    server_cpu: float | None = 0.0  # seconds of CPU the uvicorn process used (None: unknown)
    machine_busy: float | None = 0.0  # core-seconds the whole machine was busy

    def add(self, other: "Phase") -> None:
        self.requests += other.requests
        self.seconds += other.seconds
        if self.server_cpu is None or other.server_cpu is None:
            self.server_cpu = None
        else:
            self.server_cpu += other.server_cpu
        if self.machine_busy is None or other.machine_busy is None:
            self.machine_busy = None
        else:
            self.machine_busy += other.machine_busy
        self.latencies.extend(other.latencies)
        self.failures += other.failures
        self.failure_samples.extend(other.failure_samples[: max(0, 5 - len(self.failure_samples))])


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """Core-seconds all CPUs spent not idle since boot, from /proc/stat."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # guest time is already counted in user
    return busy / os.sysconf("SC_CLK_TCK")


def delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


async def run_phase(
    clients: list[httpx.AsyncClient],
    path: str,
    marker: bytes,
    n: int,
    server_pid: int,
    payload: dict | None = None,
) -> Phase:
    """`n` POSTs of `payload` (ISSUE_BODY by default) to `path`, one worker per client; wall
    time, per-request latencies and the server's CPU time."""
    phase = Phase(requests=n)
    body = json.dumps(ISSUE_BODY if payload is None else payload).encode()
    headers = {"Content-Type": "application/json"}
    remaining = n

    async def worker(client: httpx.AsyncClient):
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            try:
                response = await client.post(path, content=body, headers=headers)
                ok = response.status_code == 200 and marker in response.content
                problem = f"HTTP {response.status_code}: {response.content[:100]!r}"
            except httpx.HTTPError as exc:
                ok, problem = False, f"{type(exc).__name__}: {exc}"
            phase.latencies.append(time.perf_counter() - start)
            if not ok:
                phase.failures += 1
                if len(phase.failure_samples) < 5:
                    phase.failure_samples.append(problem)

    cpu_before, busy_before = process_cpu_seconds(server_pid), machine_busy_seconds()
    start = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker(client) for client in clients[:n])), PHASE_TIMEOUT
        )
    except TimeoutError:
        unfinished = n - len(phase.latencies)
        phase.failures += unfinished
        phase.failure_samples.append(f"{unfinished} requests unanswered after {PHASE_TIMEOUT}s")
    phase.seconds = time.perf_counter() - start
    phase.server_cpu = delta(cpu_before, process_cpu_seconds(server_pid))
    phase.machine_busy = delta(busy_before, machine_busy_seconds())
    return phase


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(phase: Phase) -> dict:
    return {
        "requests": phase.requests,
        "seconds": round(phase.seconds, 3),
        "req_per_s": round(phase.requests / phase.seconds, 1) if phase.seconds else 0.0,
        "p50_ms": round(percentile(phase.latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(phase.latencies, 99) * 1000, 2),
        "server_cpu_ms_per_req": (
            round(phase.server_cpu * 1000 / phase.requests, 2)
            if phase.server_cpu is not None and phase.requests
            else None
        ),
        # Share of all cores busy (client, server, database, anything else): well under
        # 100% means the run waited on something other than CPU (locks, sleeps, I/O).
        "machine_cpu_busy_pct": (
            round(100 * phase.machine_busy / (phase.seconds * (os.cpu_count() or 1)), 1)
            if phase.machine_busy is not None and phase.seconds
            else None
        ),
        "failures": phase.failures,
        "failure_samples": phase.failure_samples,
    }


async def drive(
    base_url: str, api_key: str, server_pid: int, targets: dict | None = None
) -> tuple[dict[str, Phase], dict[str, Phase]]:
    """Warm-up phases, then the measured totals, per endpoint. `targets`: name -> (path,
    marker, payload or None for ISSUE_BODY); ENDPOINTS by default."""
    if targets is None:
        targets = {name: (path, marker, None) for name, (path, marker) in ENDPOINTS.items()}
    # One client of one keep-alive connection per worker: httpx's pool costs CPU per
    # request that grows with its size, and the client shares the machine with the server.
    clients = [
        httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=REQUEST_TIMEOUT,
        )
        for _ in range(CONCURRENCY)
    ]
    try:
        warm = {
            name: await run_phase(clients, path, marker, WARMUP, server_pid, payload=body)
            for name, (path, marker, body) in targets.items()
        }
        totals = {name: Phase(requests=0) for name in targets}
        per_round = [REQUESTS // ROUNDS + (i < REQUESTS % ROUNDS) for i in range(ROUNDS)]
        for n in per_round:  # A B A B ...: drift over the run hits every endpoint
            for name, (path, marker, body) in targets.items():
                totals[name].add(
                    await run_phase(clients, path, marker, n, server_pid, payload=body)
                )
        return warm, totals
    finally:
        for client in clients:
            await client.aclose()


def run_async(coro):
    """asyncio.run, on uvloop when it is installed (it roughly halves the client's CPU)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# --- Server and database ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bin_path(name: str) -> list[str]:
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", name]


def server_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_ROOT_URLCONF="bench.urls",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        ROOMKEY_SERVE_STATIC="false",
        # Plain HTTP on loopback: production's TLS terminator is not part of the measurement.
        DJANGO_SECURE_SSL_REDIRECT="false",
        # Rate limits stay on (every request is counted) but far above what one key sends
        # here: a benchmark measures, it is not refused (bench/limits.py measures their cost).
        ROOMKEY_RATES=BENCH_RATES,
        ROOMKEY_ADDRESS_RATES=BENCH_RATES,
    )
    env.pop("DJANGO_READ_DOT_ENV", None)
    return env


def manage(env: dict, *args: str) -> str:
    cmd = [sys.executable, "manage.py", *args]
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SETUP_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise SetupError(f"{' '.join(args)} took longer than {SETUP_TIMEOUT}s") from None
    if done.returncode != 0:
        raise SetupError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def postgres_reset(url: str) -> str:
    """Drop and recreate the bench database; return the server version. Raises
    ConnectionError if PostgreSQL cannot be reached."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SetupError(f"no database name in {url}")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    try:
        conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ConnectionError(str(exc).strip()) from None
    try:
        with conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise SetupError(f"could not recreate database {name}: {exc}") from None
    return version


def start_server(env: dict, port: int, log) -> subprocess.Popen:
    cmd = [
        *bin_path("uvicorn"),
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--lifespan",
        "off",
        "--no-proxy-headers",
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(proc: subprocess.Popen, base_url: str, api_key: str, log_path: Path):
    deadline = time.monotonic() + READY_TIMEOUT
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise SetupError(f"uvicorn exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                response = await client.post("/bench/ping", json=ISSUE_BODY)
                if response.status_code == 200:
                    return
                raise SetupError(f"/bench/ping answered {response.status_code}: {response.text}")
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SetupError(f"uvicorn not answering after {READY_TIMEOUT}s")
            await asyncio.sleep(0.1)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(env: dict, api_key: str, log_path: Path, targets: dict | None = None):
    """Start uvicorn with `env`, warm up and measure `targets` (see drive), stop it. Returns
    the per-endpoint summaries (warm-up failures fail the run as well) and the server log."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = start_server(env, port, log)
        try:
            run_async(wait_ready(proc, base_url, api_key, log_path))
            warm, totals = run_async(drive(base_url, api_key, proc.pid, targets))
        finally:
            stop_server(proc)
    results = {name: summary(phase) for name, phase in totals.items()}
    for name, phase in warm.items():
        results[name]["warmup_failures"] = phase.failures
        results[name]["failure_samples"] = (
            phase.failure_samples + results[name]["failure_samples"]
        )[:5]
    return results, log_path.read_text(errors="replace").strip()


def create_project(env: dict) -> dict:
    """`createproject bench --json`: {project_id, api_key, …}."""
    return json.loads(manage(env, "createproject", "bench", "--json").strip().splitlines()[-1])


def bench_backend(label: str, database_url: str, workdir: Path) -> dict:
    env = server_env(database_url)
    manage(env, "migrate", "--noinput")
    api_key = create_project(env)["api_key"]
    results, server_log = measure(env, api_key, workdir / f"uvicorn-{label}.log")
    trivial, issuance = results["trivial"]["req_per_s"], results["issuance"]["req_per_s"]
    return {
        "backend": label,
        "endpoints": results,
        "ratio": round(issuance / trivial, 3) if trivial else None,
        "server_log_tail": server_log[-2000:],
    }


def backend_urls(workdir: Path, errors: list[str]) -> list[tuple[str, str]]:
    """(label, database URL) of each backend in BENCH_BACKENDS; an unknown one is an error."""
    found = []
    for backend in BACKENDS:
        if backend == "sqlite":
            found.append(("sqlite", f"sqlite:///{workdir / 'bench.sqlite3'}"))
        elif backend == "postgres":
            found.append(("postgresql", POSTGRES_URL))
        else:
            errors.append(f"unknown backend {backend!r} in BENCH_BACKENDS")
    return found


# --- Reporting ----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(pg_version: str | None) -> dict:
    import django
    import rest_framework
    import uvicorn

    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "load_average_at_end": load,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.__version__,
        "djangorestframework": rest_framework.VERSION,
        "uvicorn": uvicorn.__version__,
        "httpx": httpx.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
    }


def print_report(info: dict, runs: list[dict], skipped: dict, errors: list[str]) -> None:
    print()
    print(
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}; "
        f"Django {info['django']}, DRF {info['djangorestframework']}, "
        f"uvicorn {info['uvicorn']}, httpx {info['httpx']}; SQLite {info['sqlite']}; "
        f"PostgreSQL {info['postgresql'] or 'n/a'}; load average at end "
        f"{' '.join(info['load_average_at_end'] or ['n/a'])}"
    )
    print(
        f"Run: {REQUESTS} requests per endpoint in {ROUNDS} alternating rounds, "
        f"{CONCURRENCY} concurrent keep-alive connections, {WARMUP} warm-up requests each; "
        "client, server and database on the same machine (loopback)."
    )
    print(
        "srv CPU = CPU time of the uvicorn process (all threads) per request; the database's "
        "own CPU is not included. CPU busy = share of all cores busy during the "
        "measurement (anything on the machine). PostgreSQL connection pool max_size: "
        f"{os.environ.get('DJANGO_DB_POOL_MAX', '16 (settings default)')}."
    )
    print()
    header = (
        f"{'backend':<10} {'endpoint':<9} {'requests':>8} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'srv CPU ms/req':>14} {'CPU busy':>8} {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        for name, r in run["endpoints"].items():
            cpu, busy = r["server_cpu_ms_per_req"], r["machine_cpu_busy_pct"]
            print(
                f"{run['backend']:<10} {name:<9} {r['requests']:>8} {r['req_per_s']:>8.1f} "
                f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                f"{'n/a' if cpu is None else f'{cpu:.2f}':>14} "
                f"{'n/a' if busy is None else f'{busy:.0f}%':>8} {r['failures']:>6}"
            )
    print()
    for run in runs:
        ratio = "n/a" if run["ratio"] is None else f"{run['ratio']:.2f}"
        line = f"{run['backend']}: issuance / trivial throughput = {ratio}"
        if run["backend"] == "postgresql":
            met = {True: "met", False: "NOT met", None: "not judged, requests failed"}[
                run["target_met"]
            ]
            line += f"  (target >= {TARGET_RATIO} on PostgreSQL: {met})"
        else:
            line += "  (no target on SQLite)"
        print(line)
    for label, reason in skipped.items():
        print(f"{label}: SKIPPED ({reason})")
        if label == "postgresql":
            print(f"  target >= {TARGET_RATIO} on PostgreSQL: not checked")
    for error in errors:
        print(f"ERROR: {error}")
    for run in runs:
        for name, r in run["endpoints"].items():
            if r["failures"] or r["warmup_failures"]:
                print(
                    f"FAILED: {run['backend']} {name}: {r['failures']} of {r['requests']} "
                    f"measured requests, {r['warmup_failures']} of {WARMUP} warm-up requests"
                )
                for sample, count in Counter(r["failure_samples"]).items():
                    print(f"  {count} x {sample}")
        failed = any(r["failures"] or r["warmup_failures"] for r in run["endpoints"].values())
        if failed and run["server_log_tail"]:
            print(f"  last lines of the {run['backend']} server's log:")
            for line in run["server_log_tail"].splitlines()[-3:]:
                print(f"    {line[:200]}")


def write_results(
    path: Path, name: str, *, began: float, info: dict, config: dict, runs, skipped, errors, **extra
) -> int:
    """Write a run's JSON record to `path` and say where; returns how many requests failed
    (warm-ups included)."""
    failures = sum(
        r["failures"] + r["warmup_failures"] for run in runs for r in run["endpoints"].values()
    )
    record = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info,
        "config": {
            "requests_per_endpoint": REQUESTS,
            "rounds": ROUNDS,
            "concurrency": CONCURRENCY,
            "warmup_per_endpoint": WARMUP,
            **config,
        },
        **extra,
        "runs": runs,
        "skipped": skipped,
        "errors": errors,
        "failures": failures,
        "duration_s": round(time.monotonic() - began, 1),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nResults written to {path.relative_to(ROOT)} ({time.monotonic() - began:.0f}s).")
    return failures


def bench_backends(bench, *, prefix: str, skipped: dict[str, str], errors: list[str]):
    """Run `bench(label, database_url, workdir)` on each backend of BENCH_BACKENDS (a fresh
    PostgreSQL database each time) in one temporary directory. Returns the runs (each with its
    "database_url") and PostgreSQL's version; an unreachable PostgreSQL goes into `skipped`, a
    backend that could not be set up into `errors`."""
    runs: list[dict] = []
    pg_version = None
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        for label, url in backend_urls(workdir, errors):
            try:
                if label == "postgresql":
                    pg_version = postgres_reset(url)
                print(f"{label}: migrating, starting uvicorn, measuring ...", flush=True)
                run = bench(label, url, workdir)
            except ConnectionError as exc:
                skipped[label] = f"PostgreSQL not reachable at {url}: {exc}"
                print(f"{label}: skipped, {skipped[label]}", flush=True)
                continue
            except SetupError as exc:
                errors.append(f"{label}: {exc}")
                continue
            run["database_url"] = url
            runs.append(run)
    return runs, pg_version


def main() -> int:
    skipped: dict[str, str] = {}
    errors: list[str] = []
    began = time.monotonic()
    runs, pg_version = bench_backends(
        bench_backend, prefix="roomkey-bench-", skipped=skipped, errors=errors
    )
    for run in runs:
        if run["backend"] == "postgresql":
            failed = any(r["failures"] or r["warmup_failures"] for r in run["endpoints"].values())
            # None: not judged, since requests failed.
            run["target_met"] = (
                None if failed or run["ratio"] is None else run["ratio"] >= TARGET_RATIO
            )

    info = machine(pg_version)
    print_report(info, runs, skipped, errors)
    failures = write_results(
        RESULTS,
        "chat_tokens",
        began=began,
        info=info,
        config={"body": ISSUE_BODY, "endpoints": {n: p for n, (p, _) in ENDPOINTS.items()}},
        runs=runs,
        skipped=skipped,
        errors=errors,
        target={"backend": "postgresql", "min_ratio": TARGET_RATIO},
    )
    if failures:
        print(f"FAILED: {failures} requests did not get a 200 (warm-up included).")
        return 1
    if errors:
        print(f"ERROR: {len(errors)} backend(s) could not be measured.")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
