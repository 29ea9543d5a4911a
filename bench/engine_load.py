"""Engine under load: concurrent calls against a fake Asterisk in another process.

    python bench/engine_load.py [--levels 100,1000,5000] [--duration SECONDS] [--quick]

For each level it runs, each in fresh processes, the real engine and then a hand-written
baseline ARI loop against the load driver (``load_driver.py``: a ``FakeAri`` whose callers walk
one scripted path), and prints what it measured.  See bench/README.md for what each figure
means.  Nothing here asserts on a time: it prints.
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


@dataclass
class Run:
    mode: str
    level: int
    ramp_s: float = 0.0
    ramp_timeout: bool = False
    totals: dict[str, Any] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)
    idle: dict[str, Any] = field(default_factory=dict)
    start: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] = field(default_factory=dict)
    rss_held_kib: int = 0
    lag: list[float] = field(default_factory=list)

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


def run_level(ctx: Any, mode: str, level: int, args: argparse.Namespace,
              call_seconds: float) -> Run:
    import load_driver
    import load_engine

    run = Run(mode, level)
    fake = Peer(ctx, load_driver.main, args.scale)
    engine = None
    try:
        port = fake.receive(30)["port"]
        url = f"http://127.0.0.1:{port}/ari"
        engine = Peer(ctx, load_engine.main, url, mode, args.max_connections,
                      max(5000, level + level // 2))
        engine.receive(60)
        print(f"  {mode} {level}: engine-side pid {engine.process.pid}, "
              f"fake pid {fake.process.pid}", file=sys.stderr, flush=True)
        fake.ask(("wait_connection", 20.0))
        time.sleep(1.0)                        # let start-up settle before the idle sample
        run.idle = engine.ask(("sample",))
        rate = args.ramp_rate or level / call_seconds
        ramp_timeout = level / rate + call_seconds + 15
        held = fake.ask(("ramp", level, rate, ramp_timeout), ramp_timeout + 10)
        run.ramp_s, run.ramp_timeout = held["ramp_s"], bool(held.get("timeout"))
        fake.ask(("window_start",))
        run.start = engine.ask(("sample",))
        profiling = args.profile and mode == "engine" and level == args.profile_level
        if profiling:
            engine.ask(("profile_start",))
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
        run.end = engine.ask(("sample",))
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


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def report(runs: dict[tuple[str, int], Run], levels: list[int], args: argparse.Namespace) -> None:
    width = 12
    head = f"{'':44}" + "".join(f"{level:>{width}}" for level in levels)

    def row(label: str, mode: str, fn: Any) -> None:
        cells = []
        for level in levels:
            run = runs.get((mode, level))
            cells.append(f"{fn(run) if run is not None else '-':>{width}}")
        print(f"  {label:42}" + "".join(cells))

    for mode in ("engine", "baseline"):
        title = ("engine (Engine + AriAdapter + sample flows + SQLite store)" if mode == "engine"
                 else "baseline (hand-written aiohttp ARI loop, same requests but the language menu, "
                       "no flow/store)")
        print(f"\n{title}")
        print(head)
        row("calls completed (whole run)", mode, lambda r: r.totals["completed"])
        row("calls failed (whole run)", mode, lambda r: r.totals["failed"])
        row("ramp to level (s)", mode,
            lambda r: f"{r.ramp_s:.1f}" + ("!" if r.ramp_timeout else ""))
        row("peak concurrent calls", mode, lambda r: r.totals["peak"])
        row("held concurrent calls (min/mean)", mode,
            lambda r: f"{r.held[0]}/{r.held[1]:.0f}")
        row("calls completed in window", mode, lambda r: r.handled)
        row("call rate in window (calls/s)", mode, lambda r: f"{r.handled / r.wall:.1f}")
        row("latency event→request p50 (ms)", mode,
            lambda r: ms(percentile(r.window["latency"], 50)))
        row("latency event→request p99 (ms)", mode,
            lambda r: ms(percentile(r.window["latency"], 99)))
        row("latency event→request max (ms)", mode,
            lambda r: ms(max(r.window["latency"], default=float("nan"))))
        row("latency samples", mode, lambda r: len(r.window["latency"]))
        for kind in ("StasisStart", "PlaybackFinished", "ChannelDtmfReceived"):
            row(f"  p99 after {kind} (ms)", mode,
                lambda r, k=kind: ms(percentile(r.window["by_kind"].get(k, []), 99)))
        row("CPU (share of one core)", mode, lambda r: f"{r.cpu / r.wall:.0%}")
        row("CPU per call (ms)", mode, lambda r: f"{r.cpu_ms_per_call:.2f}")
        row(f"CPU per ARI request (ms, {REQUESTS[mode]}/call)", mode,
            lambda r, n=REQUESTS[mode]: f"{r.cpu_ms_per_call / n:.3f}")
        row("RSS idle (MiB)", mode, lambda r: f"{r.idle['rss_kib'] / 1024:.1f}")
        row("RSS at held level (MiB)", mode, lambda r: f"{r.rss_held_kib / 1024:.1f}")
        row("RSS per live call (KiB)", mode, lambda r: f"{r.rss_per_call_kib:.1f}")
        row("event loop lag p99 / max (ms)", mode,
            lambda r: f"{ms(percentile(r.lag, 99))}/{ms(max(r.lag, default=0))}")
        row("fake: CPU (share of one core)", mode, lambda r: f"{r.fake_cpu_share:.0%}")
        row("fake: loop lag p99 / max (ms)", mode,
            lambda r: f"{ms(percentile(r.window['lag'], 99))}/"
                      f"{ms(max(r.window['lag'], default=0))}")

    print("\nengine CPU per call ÷ baseline CPU per call")
    print(head)
    cells = []
    for level in levels:
        e, b = runs.get(("engine", level)), runs.get(("baseline", level))
        cells.append(f"{e.cpu_ms_per_call / b.cpu_ms_per_call:>{width}.2f}" if e and b
                     else f"{'-':>{width}}")
    print(f"  {'ratio':42}" + "".join(cells))

    notes = []
    for (mode, level), run in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
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
    args = parser.parse_args(argv)
    args.scale = args.call_scale or (0.5 if args.quick else 1.0)
    if args.levels is None:
        args.levels = "100,1000" if args.quick else "100,1000,5000"
    if args.duration is None:
        args.duration = 5.0 if args.quick else 15.0
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if args.profile:
        args.profile = os.path.abspath(args.profile)

    import load_driver

    script = load_driver.Script(scale=args.scale)
    call_seconds = script.call_seconds
    nofile = raise_fd_limit()
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
    sys.stdout.flush()

    ctx = multiprocessing.get_context("spawn")
    modes = [args.only] if args.only else ["engine", "baseline"]
    runs: dict[tuple[str, int], Run] = {}
    started = time.monotonic()
    for level in levels:
        for mode in modes:
            t0 = time.monotonic()
            runs[(mode, level)] = run_level(ctx, mode, level, args, call_seconds)
            print(f"  ran {mode} at {level} in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    report(runs, levels, args)
    print(f"\ntotal {time.monotonic() - started:.0f}s")
    if args.profile:
        import pstats

        print(f"\nprofile of the engine at {args.profile_level} calls: {args.profile}")
        stats = pstats.Stats(args.profile)
        stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
