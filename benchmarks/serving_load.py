"""A bounded loopback load on a TF Serving REST endpoint: many concurrent clients, each sending
a fixed number of requests, with every failure counted by kind and the latency percentiles.

`python -m benchmarks serving-load` runs it against `tfxp serve` and `tfxp log-proxy` in front of
it; tests/serving/test_load.py runs it against the stand-in and the proxy in-process.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import threading
import time

from benchmarks import measure


@dataclasses.dataclass
class LoadResult:
    clients: int
    sent: int
    ok: int
    failures: collections.Counter  # kind ("HTTP 500", "ConnectionResetError", ...) -> count
    seconds: list[float]  # latency of each answered request
    wall: float

    def summary(self) -> list:
        """clients, requests, OK, failures, requests/s, p50/p90/p99/max ms."""
        lat = sorted(self.seconds) or [0.0]
        return [
            self.clients,
            self.sent,
            self.ok,
            ", ".join(f"{kind}: {n}" for kind, n in sorted(self.failures.items())) or "0",
            f"{self.ok / self.wall:.0f}",
            *(f"{measure.percentile(lat, q) * 1000:.1f}" for q in (50, 90, 99)),
            f"{lat[-1] * 1000:.1f}",
        ]


HEADER = ["clients", "requests", "OK", "failures", "requests/s", "p50 ms", "p90 ms", "p99 ms", "max ms"]


def run(
    host: str,
    port: int,
    path: str,
    body: bytes,
    clients: int,
    per_client: int,
    timeout: float = 30.0,
    keep_alive: bool = True,
    deadline_seconds: float = 120.0,
) -> LoadResult:
    """`clients` threads start together and each POSTs `body` to `path` `per_client` times, on
    one persistent connection (`keep_alive`) or a new connection per request. Every thread
    stops at `deadline_seconds`, so the load is bounded in count and time."""
    lock = threading.Lock()
    failures: collections.Counter = collections.Counter()
    seconds: list[float] = []
    sent = [0]
    start = threading.Barrier(clients)
    stop_at = [0.0]

    def client() -> None:
        connection = None
        start.wait()
        for _ in range(per_client):
            if time.monotonic() > stop_at[0]:
                break
            if connection is None or not keep_alive:
                connection = http.client.HTTPConnection(host, port, timeout=timeout)
            began = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                kind = None if response.status == 200 else f"HTTP {response.status}"
                if response.will_close or not keep_alive:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as err:
                kind = type(err).__name__
                connection.close()
                connection = None
            elapsed = time.perf_counter() - began
            with lock:
                sent[0] += 1
                if kind is None:
                    seconds.append(elapsed)
                else:
                    failures[kind] += 1
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    began = time.monotonic()
    stop_at[0] = began + deadline_seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline_seconds + timeout + 5)
    wall = time.monotonic() - began
    return LoadResult(clients, sent[0], len(seconds), failures, seconds, wall)
