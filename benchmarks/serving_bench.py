"""Serving latency and throughput: the real server on loopback under bounded load.

    .venv/bin/python benchmarks/serving_bench.py [--seconds 20] [--rate 50] [--workers 1]
                                                 [--tracking-uri URI]

Starts `bentoml serve clv.serving.service:CLVService` on 127.0.0.1 (a free port), then:
1. single-customer requests (raw transactions + as_of) at a fixed arrival rate (open loop:
   each request is sent on schedule, whether or not the previous ones have answered);
2. the same with precomputed features;
3. batches of 1,000 customers (raw transactions) with drivers, one after the other.
Prints p50/p99 latency and throughput of each, then stops the server. Traffic goes only to
127.0.0.1. Without --tracking-uri, a small model is trained into a temporary MLflow store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from score_bench import train_small_store

AS_OF = "1997-09-30"


def customers_from_cdnow(n: int) -> list[dict]:
    """n CDNOW customers as raw transactions (with quantity) up to AS_OF."""
    import pandas as pd
    from clv.features.datasets import cdnow_master_path

    log = pd.read_csv(cdnow_master_path(), dtype={"customer_id": str, "date": str})
    log = log[log["date"] <= AS_OF]
    out = []
    for cid, rows in log.groupby("customer_id", sort=True):
        out.append(
            {
                "customer_id": cid,
                "as_of": AS_OF,
                "transactions": [
                    {"timestamp": d, "amount": float(a), "quantity": float(q)}
                    for d, a, q in zip(rows["date"], rows["amount"], rows["quantity"], strict=True)
                ],
            }
        )
        if len(out) == n:
            break
    return out


def start(uri: str, log: Path, workers: int = 1) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1",
           "BENTOML_DO_NOT_TRACK": "true", "CLV_MAX_BATCH": "1000",
           "CLV_WORKERS": str(workers)}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "clv.serving.service:CLVService",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}")


def report(
    name: str, latencies: list[float], errors: int, elapsed: float, per_request: int
) -> None:
    ms = np.asarray(latencies) * 1000
    print(
        f"{name:<44} n={len(ms):>5}  p50 {np.percentile(ms, 50):7.1f} ms  "
        f"p99 {np.percentile(ms, 99):7.1f} ms  max {ms.max():7.1f} ms  "
        f"{len(ms) / elapsed:7.1f} req/s  {len(ms) * per_request / elapsed:8.0f} customers/s  "
        f"errors {errors}",
        flush=True,
    )


async def open_loop(url: str, bodies: list[dict], rate: float, seconds: float, name: str) -> None:
    """Send bodies (cycling) at `rate` per second for `seconds`; latency from the send time.

    Bodies are encoded to JSON before the clock starts: the client's own encoding is not the
    server's latency (and competes with the server for the same two cores)."""
    n = int(rate * seconds)
    encoded = [json.dumps(body).encode() for body in bodies]
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(i: int, at: float) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            sent = time.perf_counter()
            try:
                response = await client.post(
                    "/predict", content=encoded[i % len(encoded)], headers=headers
                )
            except httpx.HTTPError as exc:
                errors += 1
                print(f"  request {i}: {type(exc).__name__} {exc}", flush=True)
                return
            if response.status_code == 200:
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1

        for i in range(20):  # warm-up, not measured
            await client.post("/predict", json=bodies[i % len(bodies)])
        t0 = time.perf_counter() + 0.1
        await asyncio.gather(*(one(i, t0 + i / rate) for i in range(n)))
        report(name, latencies, errors, time.perf_counter() - t0, 1)


def closed_loop(url: str, body: dict, repeats: int, name: str) -> None:
    latencies, errors = [], 0
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/predict", json=body)  # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            sent = time.perf_counter()
            response = client.post("/predict", json=body)
            if response.status_code == 200 and len(response.json()) == len(body["customers"]):
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1
        report(name, latencies, errors, time.perf_counter() - t0, len(body["customers"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per open-loop scenario")
    parser.add_argument("--rate", type=float, default=50.0, help="single-customer requests/s")
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 to send")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clv-serving-bench-") as tmp:
        root = Path(tmp)
        uri = args.tracking_uri or train_small_store(root)
        customers = customers_from_cdnow(1000)
        process, url = start(uri, root / "server.log", args.workers)
        try:
            info = httpx.get(f"{url}/model").json()
            explained = httpx.post(
                f"{url}/explain", json={"customers": customers[:200]}, timeout=60
            ).json()["customers"]
            predicted = httpx.post(
                f"{url}/predict", json={"customers": customers[:200]}, timeout=60
            ).json()
            stages = [p["lifecycle_stage"] for p in predicted]
            with_features = [
                {"customer_id": c["customer_id"], "lifecycle_stage": s,
                 "features": {k: c["feature_values"][k] for k in info["input_features"]}}
                for c, s in zip(explained, stages, strict=True)
            ]  # fmt: skip
            print(f"server {url} ({args.workers} worker(s), OMP_NUM_THREADS=1), "
                  f"model version {info['version']}, "
                  f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
            singles = [{"customers": [c]} for c in customers[:200]]
            asyncio.run(open_loop(url, singles, args.rate, args.seconds,
                                  f"1 customer, raw transactions @ {args.rate:g}/s"))  # fmt: skip
            singles = [{"customers": [c]} for c in with_features]
            asyncio.run(open_loop(url, singles, args.rate, args.seconds,
                                  f"1 customer, features @ {args.rate:g}/s"))  # fmt: skip
            closed_loop(url, {"customers": customers}, args.batches,
                        "1,000 customers, raw transactions, drivers")  # fmt: skip
            batch = with_features * 5
            batch = [{**c, "customer_id": f"{c['customer_id']}-{i}"} for i, c in enumerate(batch)]
            closed_loop(url, {"customers": batch}, args.batches,
                        "1,000 customers, features, drivers")  # fmt: skip
        finally:
            if process.poll() is not None:
                print(f"server exited:\n{(root / 'server.log').read_text()[-3000:]}")
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
