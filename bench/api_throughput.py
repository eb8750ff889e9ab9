"""Ingest API throughput beside two baselines measured in the same run, on the same machine.

- `api`: the real app (`soulcaster api`), POST /ingest/manual and POST /ingest/feedback batches.
- `xadd floor`: a minimal FastAPI endpoint doing one XADD per event (the floor of any FastAPI +
  Redis design; a batch pipelines its XADDs).
- `original`: the original's per-request shape, a sync `def` endpoint doing GET external key, HSET,
  two ZADDs, SADD and SET, one command each (a batch pipelines them, as its GitHub sync did).

Each server is a real uvicorn subprocess on 127.0.0.1 against a throwaway redis-server; the client
runs concurrent httpx requests. Run: `.venv/bin/python -m bench.api_throughput` (about 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent


def xadd_floor_app() -> Any:
    """uvicorn factory: the baseline that only appends."""
    app = FastAPI()
    redis = Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)

    @app.post("/ingest/manual", status_code=202)
    async def manual(request: Request) -> JSONResponse:
        event_id = await redis.xadd("stream:ingest", {"payload": (await request.body()).decode()})
        return JSONResponse({"event_id": event_id}, status_code=202)

    @app.post("/ingest/feedback", status_code=202)
    async def feedback(request: Request) -> JSONResponse:
        items = json.loads(await request.body())["items"]
        async with redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd("stream:ingest", {"payload": json.dumps(item)})
            return JSONResponse({"event_ids": await pipe.execute()}, status_code=202)

    return app


def original_shape_app() -> Any:
    """uvicorn factory: the original's synchronous write path, command by command."""
    from fastapi import FastAPI
    from redis import Redis

    app = FastAPI()
    redis = Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)

    def write(item: dict[str, Any], run: Any) -> str:
        item_id, now = str(uuid.uuid4()), datetime.now(UTC)
        source, external_id = "manual", item.get("external_id") or item_id
        run.get(f"feedback:external:{source}:{external_id}")
        fields = {
            "id": item_id,
            "source": source,
            "title": item.get("text", "")[:80],
            "body": item.get("text", ""),
        }
        run.hset(f"feedback:{item_id}", mapping={**fields, "created_at": now.isoformat(), "metadata": "{}"})
        run.zadd("feedback:created", {item_id: now.timestamp()})
        run.zadd(f"feedback:source:{source}", {item_id: now.timestamp()})
        run.sadd("feedback:unclustered", item_id)
        run.set(f"feedback:external:{source}:{external_id}", item_id)
        return item_id

    @app.post("/ingest/manual")
    def manual(item: dict[str, Any]) -> dict[str, str]:
        return {"status": "ok", "id": write(item, redis)}

    @app.post("/ingest/feedback")
    def feedback(batch: dict[str, Any]) -> dict[str, list[str]]:
        with redis.pipeline(transaction=False) as pipe:
            ids = [write({"text": item["title"]}, pipe) for item in batch["items"]]
            pipe.execute()
        return {"ids": ids}

    return app


def _free_port() -> int:
    from services.dev.local_redis import free_port

    return free_port()


def start_server(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {command}")


async def drive(url: str, path: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    """Requests per second for all bodies, `concurrency` in flight; every answer must be a success."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                response = await client.post(path, json=queue.get_nowait())
                assert response.status_code < 300, response.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - started)


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    singles = [{"text": f"export hangs on report {n}"} for n in range(args.requests)]
    items = [{"source": "manual", "title": f"item {n}"} for n in range(args.batch_size)]
    batches = [{"items": items} for _ in range(args.batches)]
    single_rps = asyncio.run(drive(url, "/ingest/manual", singles, args.concurrency))
    batch_rps = asyncio.run(drive(url, "/ingest/feedback", batches, args.concurrency))
    return {"single": single_rps, "batch_items": batch_rps * args.batch_size}


def interleaved(urls: dict[str, str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Rounds alternate the servers so a noisy neighbour on shared cores hits all of them alike;
    the median round is kept."""
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    for _ in range(args.rounds):
        for name, url in urls.items():
            rounds[name].append(measure(url, args))
    return {
        name: {kind: statistics.median(r[kind] for r in runs) for kind in ("single", "batch_items")}
        for name, runs in rounds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from services.dev.local_redis import RedisServer

    uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--no-access-log"]
    servers: dict[str, list[str]] = {
        "api": [*uvicorn, "--factory", "bench.api_throughput:soulcaster_app"],
        "xadd floor": [*uvicorn, "--factory", "bench.api_throughput:xadd_floor_app"],
        "original": [*uvicorn, "--factory", "bench.api_throughput:original_shape_app"],
    }
    print(
        f"{args.requests} single requests and {args.batches} batches of {args.batch_size},",
        f"concurrency {args.concurrency}",
    )
    with tempfile.TemporaryDirectory() as data_dir:
        redis_server = RedisServer(Path(data_dir)).start()
        env = {**os.environ, "REDIS_URL": redis_server.url, "PYTHONPATH": str(ROOT)}
        ports = {name: _free_port() for name in servers}
        processes = [
            start_server([*cmd, "--port", str(ports[name])], env, ports[name])
            for name, cmd in servers.items()
        ]
        try:
            results = interleaved({name: f"http://127.0.0.1:{port}" for name, port in ports.items()}, args)
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)
            redis_server.stop()
    for name, result in results.items():
        print(
            f"  {name:<10} single {result['single']:8.0f} req/s   batch {result['batch_items']:8.0f} items/s"
        )
    api = results["api"]
    for name in ("xadd floor", "original"):
        single, batch = (api[kind] / results[name][kind] for kind in ("single", "batch_items"))
        print(f"  api / {name:<10}: single x{single:.2f}   batch x{batch:.2f}")


def soulcaster_app() -> Any:
    """uvicorn factory: the real API with settings from the environment."""
    from services.api.app import create_app

    return create_app()


if __name__ == "__main__":
    main()
