"""Engine under load: concurrent calls against a fake Asterisk in another process.

    python bench/engine_load.py [--levels 100,1000,5000] [--duration SECONDS] [--quick]
    python bench/engine_load.py --shape peak-day [--levels 5000] [--rate 20]
    python bench/engine_load.py --flood 10000 [--levels 1000]
    python bench/engine_load.py --loop asyncio,uvloop --json orjson,stdlib
    python bench/engine_load.py --gc-young 700,10000

For each level it runs, each in fresh processes, the real engine (once per ``--loop`` ×
``--json`` × ``--gc-young`` variant) and then a hand-written baseline ARI loop against the load driver
(``load_driver.py``: a ``FakeAri`` whose callers walk scripted paths), and prints what it
measured.  See bench/README.md for what each figure means.  Nothing here asserts on a time:
it prints.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

REQUESTS_PER_CALL = 8     # answer, 5 × play, 1 × stop playback, hangup
EVENTS_PER_CALL = 17      # StasisStart, StateChange, 5 × Started, 5 × Finished, 2 × DTMF, 3 × end
# The engine's sample flow asks for the language first: one more prompt (and key)
REQUESTS = {"engine": REQUESTS_PER_CALL + 1, "baseline": REQUESTS_PER_CALL}
DEFAULT_MAX_CONNECTIONS = 100   # the AriAdapter default, which ivr.app.serve uses


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Peer:
    """One spawned process and its end of the control pipe."""

    def __init__(self, ctx: Any, target: Any, *args: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        child.close()

    def ask(self, msg: tuple[Any, ...], timeout: float = 30.0) -> Any:
        self.conn.send(msg)
        return self.receive(timeout, msg[0])

    def receive(self, timeout: float, what: str = "startup") -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"no answer to {what!r} within {timeout:.0f}s "
                               f"(process alive: {self.process.is_alive()})")
        return self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        self.process.join(15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


@dataclass(frozen=True)
class Variant:
    """One measured side: ``engine`` or ``baseline``, on an event loop, with a JSON decoder
    and (the engine) a young-generation threshold (None: the engine's default)."""

    mode: str
    loop: str = "asyncio"
    json: str = "orjson"
    gc_young: int | None = None

    @property
    def label(self) -> str:
        extras = [x for x in (self.loop if self.loop != "asyncio" else "",
                              "stdlib json" if self.json == "stdlib" else "",
                              f"gc_young {self.gc_young}" if self.gc_young is not None else "") if x]
        return self.mode + (f" ({', '.join(extras)})" if extras else "")


@dataclass
class Run:
    mode: str
    level: int
    variant: Variant = Variant("engine")
    flood: dict[str, Any] = field(default_factory=dict)
    ramp_s: float = 0.0
    ramp_timeout: bool = False
    totals: dict[str, Any] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)
    idle: dict[str, Any] = field(default_factory=dict)
    start: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] = field(default_factory=dict)
    rss_held_kib: int = 0
    lag: list[float] = field(default_factory=list)
    gc_full: list[float] = field(default_factory=list)    # full collections in the window (s)
    heap: list[tuple[str, float, int]] = field(default_factory=list)   # --heap: what grew
    heap_live: int = 0                                    # live calls when it was read
    tasks: dict[str, int] = field(default_factory=dict)   # --heap: live tasks by name

    # -- derived figures -----------------------------------------------------------------------
    @property
    def wall(self) -> float:
        return self.end["t"] - self.start["t"]

    @property
    def handled(self) -> int:
        return self.end["calls_handled"] - self.start["calls_handled"]

    @property
    def cpu(self) -> float:
        return self.end["cpu"] - self.start["cpu"]

    @property
    def cpu_ms_per_call(self) -> float:
        return self.cpu * 1000 / self.handled if self.handled else float("nan")

    @property
    def rss_per_call_kib(self) -> float:
        return (self.rss_held_kib - self.idle["rss_kib"]) / self.level

    @property
    def held(self) -> tuple[int, float]:
        live = self.window["live"]
        return (min(live), sum(live) / len(live)) if live else (0, 0.0)

    @property
    def fake_cpu_share(self) -> float:
        return self.window["cpu"] / self.window["wall"]

    def fake_saturated(self) -> str | None:
        share = self.fake_cpu_share
        lag99 = percentile(self.window["lag"], 99)
        if share > 0.85 or lag99 > 0.05:
            return (f"the fake used {share:.0%} of a core (loop lag p99 "
                    f"{lag99 * 1000:.0f} ms): it may not keep up; latencies include its delay")
        return None


def shape_of(args: argparse.Namespace, level: int) -> Any:
    import load_driver

    if args.shape != "peak-day":
        return load_driver.Shape()
    script = load_driver.Script(scale=args.scale)
    return load_driver.Shape("peak-day", self_share=args.self_share,
                             queue_wait=load_driver.peak_wait(script, level, args.rate,
                                                              args.self_share))


def run_level(ctx: Any, variant: Variant, level: int, args: argparse.Namespace,
              call_seconds: float) -> Run:
    import load_driver
    import load_engine

    mode = variant.mode
    run = Run(mode, level, variant)
    fake = Peer(ctx, load_driver.main, args.scale, shape_of(args, level))
    engine = None
    try:
        port = fake.receive(30)["port"]
        url = f"http://127.0.0.1:{port}/ari"
        engine = Peer(ctx, load_engine.main, url, mode, args.max_connections,
                      max(5000, level + level // 2), args.shape, variant.loop, variant.json,
                      variant.gc_young)
        engine.receive(60)
        print(f"  {variant.label} {level}: engine-side pid {engine.process.pid}, "
              f"fake pid {fake.process.pid}", file=sys.stderr, flush=True)
        fake.ask(("wait_connection", 20.0))
        time.sleep(1.0)                        # let start-up settle before the idle sample
        run.idle = engine.ask(("sample",))
        if args.heap and mode == "engine":
            engine.ask(("heap_start", args.heap_frames))
        if args.shape == "peak-day":
            # Faster to the level than the day's rate (the waits are memoryless: the ramped
            # callers leave at the rate of a held level), then a pause for the ramp's
            # self-service calls to end; from then on calls arrive at the day's rate.
            rate = args.ramp_rate or 2.5 * args.rate
            arrivals = args.rate
        else:
            rate = args.ramp_rate or level / call_seconds
            arrivals = 0.0
        ramp_timeout = level / rate * 1.5 + call_seconds + 15
        held = fake.ask(("ramp", level, rate, ramp_timeout, arrivals), ramp_timeout + 10)
        run.ramp_s, run.ramp_timeout = held["ramp_s"], bool(held.get("timeout"))
        if args.shape == "peak-day":
            time.sleep(args.settle)
        if args.heap and mode == "engine":
            run.heap, run.tasks = engine.ask(("heap", args.heap_top), 300)
            run.heap_live = engine.ask(("sample",))["live_calls"]
        fake.ask(("window_start",))
        run.start = engine.ask(("sample",))
        profiling = args.profile and mode == "engine" and level == args.profile_level
        if profiling:
            engine.ask(("profile_start",))
        if args.flood:
            run.flood = flood(fake, engine, args.flood)
        deadline = time.monotonic() + args.duration
        rss = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(2.0, left))
            sample = engine.ask(("sample",))
            rss = max(rss, sample["rss_kib"])
            run.lag.extend(sample["lag"])
            run.gc_full.extend(sample["gc"][2])
        run.end = engine.ask(("sample",))
        run.gc_full.extend(run.end["gc"][2])
        run.window = fake.ask(("window_end",))
        if profiling:
            engine.ask(("profile_stop", args.profile), 120)
        run.rss_held_kib = max(rss, run.end["rss_kib"])
        run.lag.extend(run.end["lag"])
        run.totals = fake.ask(("drain", call_seconds + 20), call_seconds + 60)
    finally:
        if engine is not None:
            engine.stop()
        fake.stop()
    return run


def flood(fake: Peer, engine: Peer, count: int) -> dict[str, Any]:
    """One more call, then ``count`` keys on it as fast as the socket takes them."""
    channel = fake.ask(("flood_call",))["channel"]
    found = False
    give_up = time.monotonic() + 10
    while not found and time.monotonic() < give_up:
        found = engine.ask(("watch", channel))
        if not found:
            time.sleep(0.02)
    time.sleep(0.5)                            # answered, and in its first menu
    sent = fake.ask(("flood", channel, count), 300)
    time.sleep(1.0)                            # the last keys reach the call
    return {**sent, **engine.ask(("watched",))}


def print_heap(runs: dict[tuple[Variant, int], Run]) -> None:
    for (variant, level), run in runs.items():
        if not run.heap:
            continue
        live = max(run.heap_live, 1)
        total = run.heap[0][1]
        print(f"\nheap grown from idle to {run.heap_live} live calls ({variant.label}, level "
              f"{level}): {total:.0f} KiB, {total * 1024 / live:.0f} B per live call")
        print(f"{'B/call':>8} {'blocks/call':>11}  where")
        for where, kib, blocks in run.heap:
            print(f"{kib * 1024 / live:8.0f} {blocks / live:11.2f}  {where}")
        print("live tasks by name: " + ", ".join(
            f"{kind} {n}" for kind, n in sorted(run.tasks.items(), key=lambda kv: -kv[1])[:12]))


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def shed(run: Run) -> int:
    return int(sum(run.end["shed"].values()) - sum(run.idle["shed"].values()))


def report(runs: dict[tuple[Variant, int], Run], variants: list[Variant], levels: list[int],
           args: argparse.Namespace) -> None:
    width = 12
    head = f"{'':44}" + "".join(f"{level:>{width}}" for level in levels)
    peak = args.shape == "peak-day"

    def row(label: str, variant: Variant, fn: Any) -> None:
        cells = []
        for level in levels:
            run = runs.get((variant, level))
            cells.append(f"{fn(run) if run is not None else '-':>{width}}")
        print(f"  {label:42}" + "".join(cells))

    for variant in variants:
        mode = variant.mode
        queues = " + queues (one paused agent)" if peak else ""
        title = (f"{variant.label} (Engine + AriAdapter + sample flows{queues} + SQLite store)"
                 if mode == "engine"
                 else f"{variant.label} (hand-written aiohttp ARI loop, same requests but the "
                      "language menu, no flow/store)")
        print(f"\n{title}")
        print(head)
        row("calls completed (whole run)", variant, lambda r: r.totals["completed"])
        row("calls failed (whole run)", variant, lambda r: r.totals["failed"])
        row("ramp to level (s)", variant,
            lambda r: f"{r.ramp_s:.1f}" + ("!" if r.ramp_timeout else ""))
        row("peak concurrent calls", variant, lambda r: r.totals["peak"])
        row("held concurrent calls (min/mean)", variant,
            lambda r: f"{r.held[0]}/{r.held[1]:.0f}")
        row("calls completed in window", variant, lambda r: r.handled)
        row("calls started in window (calls/s)", variant,
            lambda r: f"{r.window['started'] / r.window['wall']:.1f}")
        if peak:
            row("waiting in the holding bridge (window end)", variant,
                lambda r: r.window["bridged"])
            row("announcement lateness p50 / p99 (ms)", variant,
                lambda r: f"{ms(percentile(r.window['announce'], 50))}/"
                          f"{ms(percentile(r.window['announce'], 99))}")
            row("announcements in window", variant, lambda r: len(r.window["announce"]))
        row("calls shed (ivr_calls_shed_total)", variant,
            lambda r: shed(r) if r.mode == "engine" else "-")
        if args.flood:
            row("flood: keys sent / seconds", variant,
                lambda r: f"{r.flood.get('sent', 0)}/{r.flood.get('seconds', 0):.1f}")
            row("flood: keys_dropped (the flooding call)", variant,
                lambda r: r.flood.get("keys_dropped", "-") if r.mode == "engine" else "-")
        row("call rate in window (calls/s)", variant, lambda r: f"{r.handled / r.wall:.1f}")
        row("latency event→request p50 (ms)", variant,
            lambda r: ms(percentile(r.window["latency"], 50)))
        row("latency event→request p99 (ms)", variant,
            lambda r: ms(percentile(r.window["latency"], 99)))
        row("latency event→request max (ms)", variant,
            lambda r: ms(max(r.window["latency"], default=float("nan"))))
        row("latency samples", variant, lambda r: len(r.window["latency"]))
        kinds = sorted({k for (v, _), r in runs.items() if v == variant
                        for k in r.window["by_kind"]})
        for kind in kinds:
            row(f"  p99 after {kind} (ms)", variant,
                lambda r, k=kind: ms(percentile(r.window["by_kind"].get(k, []), 99)))
        row("CPU (share of one core)", variant, lambda r: f"{r.cpu / r.wall:.0%}")
        row("CPU per call (ms)", variant, lambda r: f"{r.cpu_ms_per_call:.2f}")
        if not peak:
            row(f"CPU per ARI request (ms, {REQUESTS[mode]}/call)", variant,
                lambda r, n=REQUESTS[mode]: f"{r.cpu_ms_per_call / n:.3f}")
        row("RSS idle (MiB)", variant, lambda r: f"{r.idle['rss_kib'] / 1024:.1f}")
        row("RSS at held level (MiB)", variant, lambda r: f"{r.rss_held_kib / 1024:.1f}")
        row("RSS per live call (KiB)", variant, lambda r: f"{r.rss_per_call_kib:.1f}")
        row("full GC pauses in window: n / max (ms)", variant,
            lambda r: f"{len(r.gc_full)}/{ms(max(r.gc_full, default=0))}")
        row("event loop lag p99 / max (ms)", variant,
            lambda r: f"{ms(percentile(r.lag, 99))}/{ms(max(r.lag, default=0))}")
        row("fake: CPU (share of one core)", variant, lambda r: f"{r.fake_cpu_share:.0%}")
        row("fake: loop lag p99 / max (ms)", variant,
            lambda r: f"{ms(percentile(r.window['lag'], 99))}/"
                      f"{ms(max(r.window['lag'], default=0))}")

    baseline = next((v for v in variants if v.mode == "baseline"), None)
    print("\nCPU per call ÷ baseline CPU per call")
    print(head)
    for variant in variants:
        if variant.mode != "engine" or baseline is None:
            continue
        cells = []
        for level in levels:
            e, b = runs.get((variant, level)), runs.get((baseline, level))
            cells.append(f"{e.cpu_ms_per_call / b.cpu_ms_per_call:>{width}.2f}" if e and b
                         else f"{'-':>{width}}")
        print(f"  {variant.label:42}" + "".join(cells))

    notes = []
    for (variant, level), run in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0].label)):
        mode = variant.label
        if run.end.get("json") != variant.json and variant.mode == "engine" or \
                run.end.get("loop") != variant.loop:
            notes.append(f"{mode} {level}: ran with {run.end.get('loop')} and "
                         f"{run.end.get('json')} json")
        if run.ramp_timeout:
            notes.append(f"{mode} {level}: the level was not reached within the ramp time "
                         f"(live {run.held[0]} at the window start)")
        if run.totals.get("failures"):
            notes.append(f"{mode} {level}: failures {run.totals['failures']}")
        saturated = run.fake_saturated()
        if saturated:
            notes.append(f"{mode} {level}: {saturated}")
    if notes:
        print("\nnotes")
        for note in notes:
            print(f"  - {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default=None,
                        help="concurrent-call levels, comma-separated (default 100,1000,5000)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds measured while each level is held (default 15)")
    parser.add_argument("--quick", action="store_true",
                        help="levels 100,1000, 5 s windows, calls half as long")
    parser.add_argument("--call-scale", type=float, default=None,
                        help="stretch every prompt and pause of the scripted call by this factor "
                             "(default 1: ~14 s calls; --quick: 0.5)")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        help="HTTP connection pool of the engine and the baseline (default 100)")
    parser.add_argument("--ramp-rate", type=float, default=0.0,
                        help="calls started per second until the level is reached "
                             "(default: level ÷ call length, the rate that holds the level)")
    parser.add_argument("--only", choices=("engine", "baseline"), default=None,
                        help="run one side only")
    parser.add_argument("--profile", metavar="FILE", default=None,
                        help="cProfile the engine process during one window into FILE")
    parser.add_argument("--profile-level", type=int, default=1000,
                        help="the level --profile applies to (default 1000)")
    parser.add_argument("--shape", choices=("short", "peak-day"), default="short",
                        help="short: every call the scripted short path (default); peak-day: the "
                             "insurer's peak, most callers waiting in the queue (see README)")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="peak-day: new calls a second while the level holds (default 20); "
                             "the mean queue wait follows from it and the level")
    parser.add_argument("--self-share", type=float, default=0.2,
                        help="peak-day: the share of self-service calls (default 0.2)")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="peak-day: seconds between reaching the level and the window")
    parser.add_argument("--flood", type=int, default=0, metavar="N",
                        help="one more call sends N keys as fast as the socket takes them "
                             "when the window opens")
    parser.add_argument("--loop", default="asyncio",
                        help="event loop(s) of the measured side: asyncio, uvloop or both "
                             "(comma-separated: the engine runs once with each)")
    parser.add_argument("--gc-young", default="",
                        help="engine.gc_young value(s) of the engine, comma-separated (the engine "
                             "runs once with each; 700 is Python's own default; default: the "
                             "engine's)")
    parser.add_argument("--heap", action="store_true",
                        help="trace the engine's allocations from idle to the held level "
                             "(tracemalloc: slows the engine; for finding what a call keeps, "
                             "not for timing) and print the lines that grew most")
    parser.add_argument("--heap-frames", type=int, default=1,
                        help="frames of each allocation's traceback to group by (--heap)")
    parser.add_argument("--heap-top", type=int, default=40,
                        help="how many of the lines that grew most to print (--heap)")
    parser.add_argument("--json", default="orjson",
                        help="JSON decoder(s) of the measured side: orjson, stdlib or both")
    args = parser.parse_args(argv)
    args.scale = args.call_scale or (0.5 if args.quick else 1.0)
    peak = args.shape == "peak-day"
    if args.levels is None:
        args.levels = ("1000" if args.quick else "5000") if peak else \
            ("100,1000" if args.quick else "100,1000,5000")
    if args.duration is None:
        args.duration = 5.0 if args.quick else (45.0 if peak else 15.0)
    loops = [x.strip() for x in args.loop.split(",") if x.strip()]
    jsons = [x.strip() for x in args.json.split(",") if x.strip()]
    if not set(loops) <= {"asyncio", "uvloop"} or not set(jsons) <= {"orjson", "stdlib"}:
        parser.error("--loop takes asyncio and/or uvloop, --json orjson and/or stdlib")
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    try:
        youngs: list[int | None] = [int(x) for x in args.gc_young.split(",") if x.strip()] or [None]
    except ValueError:
        parser.error("--gc-young takes whole numbers, e.g. 700,10000")
    if args.profile:
        args.profile = os.path.abspath(args.profile)

    import load_driver

    script = load_driver.Script(scale=args.scale)
    call_seconds = script.call_seconds
    nofile = raise_fd_limit()
    print(f"load average at the start {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
          f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.release()}")
    print(f"each call: answer, welcome {script.s(script.welcome):.1f}s, main_menu with '2' after "
          f"{script.s(script.press_menu_after):.1f}s (barge-in), certificates_menu "
          f"{script.s(script.certificates):.1f}s, '0' {script.s(script.press_agent_after):.1f}s "
          f"later, connecting_agent {script.s(script.connecting):.1f}s, queue_hold "
          f"{script.s(script.hold):.1f}s, engine hangs up: ~{call_seconds:.1f}s, "
          f"{REQUESTS_PER_CALL} requests, {EVENTS_PER_CALL} events (the engine: first the language "
          f"menu, 4 prompts of 1s, '1' when they end, {REQUESTS['engine']} requests)")
    print(f"engine HTTP pool max_connections={args.max_connections}, engine max_calls="
          f"max(5000, 1.5 × level), RLIMIT_NOFILE={nofile}, "
          f"window {args.duration:.0f}s per level, levels {levels}")
    if peak:
        for level in levels:
            shape = shape_of(args, level)
            print(f"peak-day at {level}: {args.rate:g} new calls/s, {shape.self_share:.0%} "
                  f"self-service (certificates '1', issue info {script.s(script.issue_info):.1f}s, "
                  f"after_info, '1', goodbye: ~{script.self_service_seconds + 4:.0f}s with the "
                  f"language menu), the others to the queue after ~"
                  f"{script.to_queue_seconds + 4:.0f}s and wait there {shape.queue_wait:.0f}s on "
                  f"average (exponential, at most {load_driver.CAP:g}×) with music on hold and an "
                  f"announcement every {shape.announce_every:.0f}s, then hang up")
    if args.flood:
        print(f"flood: one more call sends {args.flood} keys when the window opens")
    sys.stdout.flush()

    ctx = multiprocessing.get_context("spawn")
    variants = [Variant("engine", loop, js, young) for loop in loops for js in jsons for young in youngs]
    variants.append(Variant("baseline", loops[0], jsons[0]))
    if args.only:
        variants = [v for v in variants if v.mode == args.only]
    runs: dict[tuple[Variant, int], Run] = {}
    started = time.monotonic()
    for level in levels:
        for variant in variants:
            t0 = time.monotonic()
            runs[(variant, level)] = run_level(ctx, variant, level, args, call_seconds)
            print(f"  ran {variant.label} at {level} in {time.monotonic() - t0:.0f}s",
                  file=sys.stderr)
    report(runs, variants, levels, args)
    if args.heap:
        print_heap(runs)
    print(f"\ntotal {time.monotonic() - started:.0f}s; load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (other work on the machine "
          f"slows both processes)")
    if args.profile:
        import pstats

        print(f"\nprofile of the engine at {args.profile_level} calls: {args.profile}")
        stats = pstats.Stats(args.profile)
        stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
