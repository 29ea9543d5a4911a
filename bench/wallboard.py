"""The wallboard's and /metrics' cost on the engine at the insurer's size.

A generated center (``ivr.stats.live.generated_state``: a real ``Acd`` and ``LiveStats``) of
1,562 agents in 7 centers with 500 callers waiting, against a small one (40 agents, 2
centers, 10 waiting) measured in the same run as the baseline.  Printed per size: a
snapshot as the wallboard sends it (taken and JSON-encoded: what blocks the event loop once
per push), its size, a /metrics scrape (``Metrics.text``), and the snapshot right after one
queue event (what a push costs while the center is busy).

    .venv/bin/python bench/wallboard.py [--repeat 30] [--agents 1562 --centers 7 --waiting 500]
"""

from __future__ import annotations

import argparse
import json
import time

from ivr.stats.live import generated_state
from ivr.stats.metrics import Metrics


def measure(agents: int, centers: int, waiting: int, repeat: int) -> dict[str, float]:
    acd, stats = generated_state(agents, centers, waiting)
    metrics = Metrics()
    metrics.follow(stats)
    encode: list[float] = []
    after_event: list[float] = []
    scrape: list[float] = []
    size = 0
    for i in range(repeat):
        t0 = time.perf_counter()
        body = json.dumps(stats.snapshot(), ensure_ascii=False, separators=(",", ":")).encode()
        encode.append(time.perf_counter() - t0)
        size = len(body)
        acd.enqueue(f"bench-{i}", next(iter(acd.queue_names())), "normal", stats.mono())
        t0 = time.perf_counter()
        json.dumps(stats.snapshot(), ensure_ascii=False, separators=(",", ":"))
        after_event.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        metrics.text()
        scrape.append(time.perf_counter() - t0)

    def ms(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000

    return {"snapshot_p50": ms(encode, 0.5), "snapshot_p95": ms(encode, 0.95),
            "after_event_p50": ms(after_event, 0.5), "scrape_p50": ms(scrape, 0.5),
            "kib": size / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1562)
    ap.add_argument("--centers", type=int, default=7)
    ap.add_argument("--waiting", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    rows = [("baseline: 40 agents, 2 centers, 10 waiting", measure(40, 2, 10, args.repeat)),
            (f"{args.agents} agents, {args.centers} centers, {args.waiting} waiting",
             measure(args.agents, args.centers, args.waiting, args.repeat))]
    print(f"{'center':46}  {'snapshot p50':>12}  {'p95':>8}  {'after an event':>14}  {'/metrics':>9}  {'size':>9}")
    for name, r in rows:
        print(f"{name:46}  {r['snapshot_p50']:9.1f} ms  {r['snapshot_p95']:5.1f} ms  "
              f"{r['after_event_p50']:11.1f} ms  {r['scrape_p50']:6.1f} ms  {r['kib']:6.0f} KiB")
    big, small = rows[1][1], rows[0][1]
    print(f"the large center's snapshot costs {big['snapshot_p50'] / max(small['snapshot_p50'], 1e-6):.0f}x "
          f"the baseline's; at one push every 0.25 s it takes {big['snapshot_p50'] / 250 * 100:.0f} % of the "
          "event loop at most (one snapshot serves every open page)")


if __name__ == "__main__":
    main()
