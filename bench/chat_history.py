"""Benchmark: chat history pages and real-time fan-out, on PostgreSQL + Redis, two servers.

Two uvicorn processes serve Roomkey on one PostgreSQL database (a fresh `roomkey_chat_bench`,
dropped and recreated) and share one Redis channel layer, as a deployment behind a load
balancer would. Measured in the same run:

(a) History page latency, `GET /api/v1/conversations/{id}/messages?page_size=50`, in a
    conversation of 1,000 messages and in one of 1,000,000 (bulk-inserted by PostgreSQL
    itself), for the newest page and for a page in the middle of the history (reached with
    a `before` cursor). Requests alternate between the cases and the two servers, one at a
    time, so each number is a latency, not a throughput. Target: p50 at 1,000,000 / p50 at
    1,000 <= 1.2 (keyset pagination: a page costs the same at any depth and length).
(b) Publish -> receive latency over real WebSockets on the relay (`/api/relay/ws`, the
    JSON-RPC protocol Chat.Client speaks): one publisher's `chat.publish`, timed until each
    subscriber's socket delivers the `chat.channel.message` event. With 100 subscribers, half
    on each server (so half the deliveries cross processes through Redis), and, as the
    baseline, with 1 subscriber on the other server. Prints p50 and p99 and the ratio.

    make bench                                  # runs this after bench.chat_tokens
    .venv/bin/python -m bench.chat_history

Environment: BENCH_CHAT_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/roomkey_chat_bench),
BENCH_REDIS_URL (REDIS_URL, else redis://127.0.0.1:6379/0; keys are prefixed per run),
BENCH_BIG_MESSAGES (1000000), BENCH_SMALL_MESSAGES (1000), BENCH_PAGE_REQUESTS (per case;
200), BENCH_SUBSCRIBERS (100), BENCH_PUBLISHES (60).

Exit status: 0 when every request and delivery succeeded (whether or not the target was met,
which is printed), 1 when any failed, 2 when the servers could not be set up; 0 with
"SKIPPED" when PostgreSQL or Redis is not reachable.
"""

import asyncio
import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench.chat_tokens import (
    ROOT,
    SetupError,
    free_port,
    machine,
    manage,
    percentile,
    postgres_reset,
    run_async,
    server_env,
    stop_server,
)
from tests.servers import uvicorn_command

RESULTS = Path(__file__).resolve().parent / "last-chat_history.json"

POSTGRES_URL = os.environ.get(
    "BENCH_CHAT_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/roomkey_chat_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL") or os.environ.get(
    "REDIS_URL", "redis://127.0.0.1:6379/0"
)
BIG = int(os.environ.get("BENCH_BIG_MESSAGES", "1000000"))
SMALL = int(os.environ.get("BENCH_SMALL_MESSAGES", "1000"))
PAGE_REQUESTS = int(os.environ.get("BENCH_PAGE_REQUESTS", "200"))
PAGE_SIZE = 50
SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "100"))
PUBLISHES = int(os.environ.get("BENCH_PUBLISHES", "60"))
FANOUT = os.environ.get("BENCH_FANOUT", "1") != "0"
WARMUP_PUBLISHES = 5

TARGET_RATIO = 1.2  # history p50 at BIG / at SMALL
READY_TIMEOUT = 30
DELIVERY_TIMEOUT = 10.0  # seconds for one publish to reach every subscriber
CHANNEL = "fanout"


# --- Setup --------------------------------------------------------------------------------


def redis_ping(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise ConnectionError(f"Redis not reachable at {url}: {exc}") from None


def bench_env(database_url: str) -> dict:
    env = server_env(database_url)
    run = secrets.token_hex(4)
    env.update(
        REDIS_URL=REDIS_URL,
        # Keys of this run only: other users of the same Redis are not disturbed.
        ROOMKEY_CHANNEL_PREFIX=f"rk-bench-{run}",
        ROOMKEY_CACHE_PREFIX=f"rk-bench-{run}",
        ROOMKEY_LIMITS_PREFIX=f"rk-bench-{run}:limits:",
    )
    return env


def start_server(env: dict, port: int, log) -> subprocess.Popen:
    return subprocess.Popen(
        uvicorn_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def wait_ready(proc: subprocess.Popen, base: str, api_key: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise SetupError(f"uvicorn exited with {proc.returncode}")
        try:
            response = httpx.get(
                base + "/api/v1/addresses", headers={"Authorization": f"Bearer {api_key}"}
            )
            if response.status_code == 200:
                return
            raise SetupError(f"GET /api/v1/addresses answered {response.status_code}")
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SetupError(f"uvicorn not answering after {READY_TIMEOUT}s")
        time.sleep(0.1)


def bulk_insert(database_url: str, conversation_id: str, count: int) -> float:
    """`count` messages in one conversation, generated by PostgreSQL itself (no round trip
    per row), one millisecond apart; returns the seconds it took, ANALYZE included."""
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO chat_message (id, conversation_id, user_id, user_name, from_address_id,
                                      ts, text, metadata, details, type, subtype, hidden)
            SELECT gen_random_uuid(), %s, 'member-' || (i %% 20), '', NULL,
                   1700000000.0 + i * 0.001, 'message number ' || i, '{}', '{}',
                   'message', 'chat', false
            FROM generate_series(1, %s) AS i
            """,
            (conversation_id, count),
        )
        conn.execute("ANALYZE chat_message")
    return time.perf_counter() - start


def middle_cursor(database_url: str, conversation_id: str, count: int) -> str:
    """The `before` cursor of the message halfway through the history, as the API makes it."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        ts, ident = conn.execute(
            "SELECT ts, id FROM chat_message WHERE conversation_id = %s "
            "ORDER BY ts, id OFFSET %s LIMIT 1",
            (conversation_id, count // 2),
        ).fetchone()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Django's config logs every request
    from chat.selectors import encode_cursor  # formats (ts, id); no database needed

    return encode_cursor(SimpleNamespace(ts=ts, id=ident))


# --- (a) History pages --------------------------------------------------------------------


async def measure_history(bases: list[str], api_key: str, cases: dict) -> dict:
    """Sequential GETs, cases and servers interleaved; latencies per case."""
    headers = {"Authorization": f"Bearer {api_key}"}
    latencies = {name: [] for name in cases}
    failures = {name: 0 for name in cases}
    samples: list[str] = []
    clients = [httpx.AsyncClient(base_url=b, headers=headers, timeout=30) for b in bases]
    try:
        for warm in range(20):  # connections, caches, the pool
            for path in cases.values():
                await clients[warm % len(clients)].get(path)
        for i in range(PAGE_REQUESTS):
            client = clients[i % len(clients)]
            for name, path in cases.items():
                start = time.perf_counter()
                response = await client.get(path)
                elapsed = time.perf_counter() - start
                ok = response.status_code == 200 and len(response.json()["results"]) == PAGE_SIZE
                if ok:
                    latencies[name].append(elapsed)
                else:
                    failures[name] += 1
                    if len(samples) < 5:
                        samples.append(f"{name}: HTTP {response.status_code} {response.text[:100]}")
    finally:
        for client in clients:
            await client.aclose()
    return {
        name: {
            "requests": PAGE_REQUESTS,
            "p50_ms": round(percentile(values, 50) * 1000, 2),
            "p99_ms": round(percentile(values, 99) * 1000, 2),
            "failures": failures[name],
        }
        for name, values in latencies.items()
    } | {"failure_samples": samples}


# --- (b) Fan-out over the relay -----------------------------------------------------------


class RelaySocket:
    """One relay connection speaking Chat.Client's JSON-RPC (signalwire.connect v3)."""

    def __init__(self, ws, name: str):
        self.ws, self.name = ws, name
        self.pending: dict[str, asyncio.Future] = {}
        self.received: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base: str, token: str, name: str) -> "RelaySocket":
        import websockets

        url = base.replace("http://", "ws://") + "/api/relay/ws"
        ws = await websockets.connect(url, origin=base, max_size=2**20, open_timeout=10)
        sock = cls(ws, name)
        await sock.call(
            "signalwire.connect",
            {
                "version": {"major": 3, "minor": 0, "revision": 0},
                "event_acks": True,
                "agent": "roomkey-bench",
                "authentication": {"jwt_token": token},
            },
        )
        return sock

    async def call(self, method: str, params: dict) -> dict:
        ident = secrets.token_hex(8)
        future = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send(
            json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        )
        reply = await asyncio.wait_for(future, 10)
        result = reply.get("result") or {}
        if "error" in reply or not str(result.get("code", "200")).startswith("2"):
            raise SetupError(f"{method} refused: {reply}")
        return result

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame.get("method") == "signalwire.event":
                await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": {}}))
                params = frame["params"]
                if params.get("event_type") == "chat.channel.message":
                    content = params["params"]["message"]["content"]
                    self.received[content] = now
                    event = self.waiters.get(content)
                    if event is not None:
                        event.set()
            elif frame.get("method") == "signalwire.ping":
                await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": {}}))
            elif "id" in frame and frame["id"] in self.pending:
                self.pending.pop(frame["id"]).set_result(frame)

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


async def mint(client: httpx.AsyncClient, member: str) -> str:
    response = await client.post(
        "/api/chat/tokens", json={"ttl": 60, "channels": [CHANNEL], "member_id": member}
    )
    if response.status_code != 200:
        raise SetupError(f"chat token refused: {response.status_code} {response.text[:200]}")
    return response.json()["token"]


async def measure_fanout(bases: list[str], api_key: str, subscribers: int, tag: str) -> dict:
    """A publisher on server 0; subscribers alternate between the servers (a single one goes
    to the other server). Latency = delivery time - time just before the publish was sent."""
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=bases[0], headers=headers, timeout=30) as client:
        tokens = [await mint(client, f"{tag}-sub-{i}") for i in range(subscribers)]
        publisher_token = await mint(client, f"{tag}-publisher")
    subs: list[RelaySocket] = []
    publisher = None
    try:
        for i, token in enumerate(tokens):
            base = bases[(i + 1) % len(bases)]
            sock = await RelaySocket.open(base, token, f"{tag}-sub-{i}")
            await sock.call("chat.subscribe", {"channels": [{"name": CHANNEL}]})
            sock.server = (i + 1) % len(bases)
            subs.append(sock)
        publisher = await RelaySocket.open(bases[0], publisher_token, f"{tag}-publisher")
        latencies: list[float] = []
        cross: list[float] = []
        missing = 0
        for n in range(WARMUP_PUBLISHES + PUBLISHES):
            content = f"{tag}-{n}-{secrets.token_hex(4)}"
            events = []
            for sub in subs:
                sub.waiters[content] = asyncio.Event()
                events.append(sub.waiters[content])
            start = time.perf_counter()
            await publisher.call("chat.publish", {"channel": CHANNEL, "content": content})
            with contextlib.suppress(TimeoutError):  # the missing ones are counted below
                await asyncio.wait_for(
                    asyncio.gather(*(e.wait() for e in events)), DELIVERY_TIMEOUT
                )
            if n < WARMUP_PUBLISHES:
                continue
            for sub in subs:
                got = sub.received.get(content)
                if got is None:
                    missing += 1
                    continue
                latencies.append(got - start)
                if sub.server != 0:
                    cross.append(got - start)
            await asyncio.sleep(0.02)
    finally:
        for sock in [*subs, publisher]:
            if sock is not None:
                await sock.close()
    return {
        "subscribers": subscribers,
        "publishes": PUBLISHES,
        "deliveries": len(latencies),
        "missing": missing,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
        "cross_process_p50_ms": round(percentile(cross, 50) * 1000, 2) if cross else None,
    }


# --- Running ------------------------------------------------------------------------------


def run(workdir: Path) -> dict:
    pg_version = postgres_reset(POSTGRES_URL)
    redis_ping(REDIS_URL)
    env = bench_env(POSTGRES_URL)
    print("migrating ...", flush=True)
    manage(env, "migrate", "--noinput")
    created = json.loads(manage(env, "createproject", "bench", "--json").strip().splitlines()[-1])
    api_key = created["api_key"]
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    logs = [(workdir / f"uvicorn-{i}.log").open("wb") for i in range(2)]
    procs = [start_server(env, port, log) for port, log in zip(ports, logs, strict=True)]
    try:
        for proc, base in zip(procs, bases, strict=True):
            wait_ready(proc, base, api_key)
        headers = {"Authorization": f"Bearer {api_key}"}
        ids = {}
        for label in ("small", "big"):
            made = httpx.post(
                bases[0] + "/api/v1/addresses",
                json={"name": f"history-{label}"},
                headers=headers,
            )
            if made.status_code != 201:
                raise SetupError(f"address not created: {made.status_code} {made.text[:200]}")
            ids[label] = made.json()["id"]
        print(f"inserting {SMALL:,} and {BIG:,} messages ...", flush=True)
        insert_seconds = bulk_insert(POSTGRES_URL, ids["small"], SMALL) + bulk_insert(
            POSTGRES_URL, ids["big"], BIG
        )
        cases = {}
        for label, count in (("small", SMALL), ("big", BIG)):
            path = f"/api/v1/conversations/{ids[label]}/messages?page_size={PAGE_SIZE}"
            cases[f"{label} newest"] = path
            cases[f"{label} middle"] = (
                path + "&before=" + middle_cursor(POSTGRES_URL, ids[label], count)
            )
        print(f"history pages: {PAGE_REQUESTS} requests per case ...", flush=True)
        history = run_async(measure_history(bases, api_key, cases))
        fanout_one = fanout_many = None
        if FANOUT:
            print(
                f"fan-out: 1 and {SUBSCRIBERS} subscribers, {PUBLISHES} publishes ...", flush=True
            )
            fanout_one = run_async(measure_fanout(bases, api_key, 1, "one"))
            fanout_many = run_async(measure_fanout(bases, api_key, SUBSCRIBERS, "many"))
    finally:
        for proc in procs:
            stop_server(proc)
        for log in logs:
            log.close()
    server_log = "\n".join(
        (workdir / f"uvicorn-{i}.log").read_text(errors="replace")[-1000:] for i in range(2)
    ).strip()
    return {
        "postgresql": pg_version,
        "insert_seconds": round(insert_seconds, 1),
        "history": history,
        "fanout": {"baseline_1": fanout_one, "subscribers": fanout_many} if FANOUT else None,
        "server_log_tail": server_log,
    }


def ratio(a, b):
    return round(a / b, 3) if a and b and a == a and b == b else None


def main() -> int:
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="roomkey-bench-chat-") as tmp:
        try:
            result = run(Path(tmp))
        except ConnectionError as exc:
            print(f"chat_history: SKIPPED ({exc})")
            return 0
        except SetupError as exc:
            print(f"chat_history: ERROR {exc}")
            return 2
    info = machine(result["postgresql"])
    history, fanout = result["history"], result["fanout"]
    newest = ratio(history["big newest"]["p50_ms"], history["small newest"]["p50_ms"])
    middle = ratio(history["big middle"]["p50_ms"], history["small middle"]["p50_ms"])
    fan_ratio = (
        ratio(fanout["subscribers"]["p50_ms"], fanout["baseline_1"]["p50_ms"]) if fanout else None
    )
    met = None if newest is None or middle is None else max(newest, middle) <= TARGET_RATIO

    print()
    print(
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}; "
        f"Django {info['django']}; uvicorn {info['uvicorn']}; PostgreSQL {info['postgresql']}; "
        f"Redis channel layer; two uvicorn processes; load average at end "
        f"{' '.join(info['load_average_at_end'] or ['n/a'])}"
    )
    print(f"Bulk insert of {SMALL + BIG:,} messages (with ANALYZE): {result['insert_seconds']} s")
    print()
    print(f"(a) history page of {PAGE_SIZE}, newest first, {PAGE_REQUESTS} sequential requests")
    print(f"{'case':<26} {'p50 ms':>8} {'p99 ms':>8} {'failed':>6}")
    for name, r in history.items():
        if name == "failure_samples":
            continue
        count = BIG if name.startswith("big") else SMALL
        label = f"{count:>9,} msgs, {name.split()[1]}"
        print(f"{label:<26} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['failures']:>6}")
    print(
        f"ratio p50 {BIG:,} / {SMALL:,}: newest page {newest}, middle page {middle} "
        f"(target <= {TARGET_RATIO}: {'met' if met else 'NOT met' if met is False else 'n/a'})"
    )
    print()
    fanouts = (fanout["baseline_1"], fanout["subscribers"]) if fanout else ()
    if fanout:
        print("(b) publish -> receive over the relay WebSocket, publisher on server 1")
        print(
            f"{'subscribers':<12} {'deliveries':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'cross-process p50':>18} {'lost':>5}"
        )
        for r in fanouts:
            cross = r["cross_process_p50_ms"]
            print(
                f"{r['subscribers']:<12} {r['deliveries']:>10} {r['p50_ms']:>8.2f} "
                f"{r['p99_ms']:>8.2f} {r['max_ms'] or 0:>8.2f} "
                f"{'n/a' if cross is None else f'{cross:.2f}':>18} {r['missing']:>5}"
            )
        print(f"ratio p50 {SUBSCRIBERS} subscribers / 1 subscriber: {fan_ratio}")
    else:
        print("(b) fan-out: not measured (BENCH_FANOUT=0)")

    failures = sum(r["failures"] for n, r in history.items() if n != "failure_samples") + sum(
        r["missing"] for r in fanouts
    )
    for sample in history["failure_samples"]:
        print(f"FAILED: {sample}")
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "chat_history",
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": info,
                "config": {
                    "small": SMALL,
                    "big": BIG,
                    "page_size": PAGE_SIZE,
                    "page_requests": PAGE_REQUESTS,
                    "subscribers": SUBSCRIBERS,
                    "publishes": PUBLISHES,
                    "database": urlunsplit(urlsplit(POSTGRES_URL)._replace(netloc="…")),
                },
                "ratios": {"history_newest": newest, "history_middle": middle, "fanout": fan_ratio},
                "target": {"history_max_ratio": TARGET_RATIO, "met": met},
                **result,
                "duration_s": round(time.monotonic() - began, 1),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nResults written to {RESULTS.relative_to(ROOT)} ({time.monotonic() - began:.0f}s).")
    if failures:
        print(f"FAILED: {failures} requests or deliveries failed.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
