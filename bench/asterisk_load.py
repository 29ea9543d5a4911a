"""The same call three ways on the real switch: the native dialplan, a bare ARI loop, the engine.

    .venv/bin/python bench/asterisk_load.py                       # 40, 120, 200, 300 calls/s, 15 s each (~12 min)
    .venv/bin/python bench/asterisk_load.py --rates 200 --seconds 10 --history 100000
    .venv/bin/python bench/asterisk_load.py --paths bare,engine --profile /tmp/engine.prof

Needs root (the sandbox) and SIPp.  Brings the sandbox Asterisk up with a wide RTP range
(``ivr sandbox up --rtp-ports N``: two ports a call, so N/2 calls at once; 20,000 by default) and
holds the sandbox lock (``/tmp/ivr-sandbox.lock``, the one the end-to-end tests take) for the run.

Every call is the same, on every path, with the same audio files: answer, a 1.3 s prompt and a
0.5 s prompt (``ivr/ko/queue_wait_post``, ``ivr/ko/digit_2``), up to 3 s for a key (the caller
presses none), hang up.  The paths, each on its own dialled number:

- **native** (19990001): ``Answer(); Background(<both prompts>); WaitExten(3); Hangup()``, added to the
  running dialplan for the run (``dialplan add extension``) and removed after it;
- **bare** (19990002): ``Stasis(bench-bare)`` and ``bench/bare_ari.py``, the least Python that
  serves the call (one WebSocket, the prompt list as one playback, a timer);
- **bare-ws** (19990005, ``--paths`` adds it): the same loop with ``--socket``, its requests as
  RESTRequest frames on the event socket (Asterisk 22.4+), as the engine sends them by default;
- **engine** (19990003): ``ivr run`` (as an operator starts it: SQLite store, JSON logs at info)
  with one flow of the same shape (a menu of the two prompts, 3 s timeout, no retry, hang up),
  its store holding ``--history`` calls (1,000,000 by default) over 100,000 numbers, which the
  callers' numbers are drawn from, so every caller is looked up in a large history.

For each rate, the three paths run one after the other (the order turns from rate to rate), each
for ``--seconds`` of new calls at that rate from one SIPp (``bench/sipp/load_caller.xml``), then
until its calls ended and Asterisk has no channel left.  A reference run at ``--reference-rate``
(5 calls/s) comes first for each path: the call length there is what "added" is counted from.

Printed per rate and path: calls ok (the far end hung up; SIPp measured INVITE → BYE), failed
(anything else: an error response, no answer, no hang-up within 30 s), turned away (the engine
shed the call with the busy message: its ``call.shed`` log lines), added call length (mean and
p99 minus the path's reference mean), Asterisk CPU per call (its process, all threads, user +
system), the application's CPU per call (bare loop or engine process), and for the engine the
calls whose registry or history lookup ran out of ``callers.lookup_budget`` (its
``caller.registry_timeout`` / ``caller.history_unavailable`` lines).  Then the ratios, engine ÷
bare loop.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

PROMPTS = ("queue_wait_post", "digit_2")       # 1.30 s and 0.50 s, Korean
WAIT = 3                                       # seconds for a key after the prompts
NUMBERS = {"native": "19990001", "bare": "19990002", "engine": "19990003", "before": "19990004",
           "bare-ws": "19990005"}
PATHS = ("native", "bare", "engine")
MORE_PATHS = ("bare-ws",)            # run when --paths names them
ENGINES = ("engine", "before")                 # "before": --before DIR, the engine from another checkout
CONTEXT = "ivr-inbound"
BARE_APP = "bench-bare"
BARE_WS_APP = "bench-bare-ws"
BEFORE_APP = "ivr-before"
LOCK = Path("/tmp/ivr-sandbox.lock")
ROOT = REPO / ".sandbox" / "root"
CLK = os.sysconf("SC_CLK_TCK")
LOSS = ("caller.registry_timeout", "caller.history_unavailable")

FLOW = f"""\
# bench/asterisk_load.py: the call of the other two paths, as a flow.
flow: bench_shape
numbers: ["{NUMBERS['engine']}", "{NUMBERS['before']}"]
language: ko
entry: menu
nodes:
  menu:
    menu: [{', '.join(PROMPTS)}]
    options:
      1: bye
    timeout: {WAIT}s
    retries: 0
    on_fail: bye
  bye:
    hangup: null
"""


# -- the sandbox -------------------------------------------------------------------------------

def ivr(*args: str, check: bool = True) -> str:
    out = subprocess.run([sys.executable, "-m", "ivr.cli", *args], capture_output=True, text=True, cwd=REPO)
    if check and out.returncode != 0:
        raise SystemExit(f"ivr {' '.join(args)} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return out.stdout


def rx(command: str) -> str:
    return ivr("sandbox", "rx", command)


def asterisk_pids() -> list[int]:
    """The main sandbox Asterisk's processes (not a center's, not a remote console)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() != "asterisk":
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-C" in argv or any(a.startswith(b"-r") for a in argv):
            continue
        if ROOT.exists() and os.path.realpath(proc / "root") != str(ROOT.resolve()):
            continue
        pids.append(int(proc.name))
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def channels() -> int:
    match = re.search(r"(\d+) active channel", rx("core show channels count"))
    return int(match.group(1)) if match else -1


def wait_for_no_channels(timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while (n := channels()) != 0:
        if time.monotonic() > deadline:
            print(f"  note: {n} channels still up after {timeout:.0f} s; going on", flush=True)
            return
        time.sleep(0.5)


def add_native_path() -> None:
    number = NUMBERS["native"]
    media = "&".join(f"ivr/ko/{p}" for p in PROMPTS)
    # Background + WaitExten (pbx builtins): the sandbox loads no app_read.
    for priority, app in enumerate(("Answer()", f"Background({media})", f"WaitExten({WAIT})", "Hangup()"), 1):
        rx(f"dialplan add extension {number},{priority},{app} into {CONTEXT} replace")
    for path, app_name in (("bare", BARE_APP), ("bare-ws", BARE_WS_APP), ("before", BEFORE_APP)):
        for priority, app in enumerate((f"Stasis({app_name})", "Hangup()"), 1):
            rx(f"dialplan add extension {NUMBERS[path]},{priority},{app} into {CONTEXT} replace")


def remove_paths() -> None:
    for path in ("native", "bare", "bare-ws", "before"):
        ivr("sandbox", "rx", f"dialplan remove extension {NUMBERS[path]}@{CONTEXT}", check=False)


# -- the applications -------------------------------------------------------------------------

def fill_history(path: Path, rows: int, source: Path | None = None) -> list[str]:
    """A store with ``rows`` calls over 100,000 numbers and 90 days (bench/history_lookup.py's
    history); returns the callers' numbers, drawn as they call (national format).  The schema
    is made by the engine that will use it (``source``: another checkout's)."""
    from history_lookup import CHUNK, History, sqlite_rows

    from ivr.store.sqlite import _COLUMNS

    path.parent.mkdir(parents=True, exist_ok=True)
    make = ("import asyncio, sys\nfrom ivr.store import open_store\n"
            "async def main():\n    async with open_store('sqlite:///' + sys.argv[1]):\n        pass\n"
            "asyncio.run(main())\n")
    env = dict(os.environ, PYTHONPATH=str(source)) if source else None
    subprocess.run([sys.executable, "-c", make, str(path)], env=env, check=True, cwd=path.parent)
    history = History(rows, 100_000, 90)
    if rows:
        t0 = time.perf_counter()
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        sql = f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        for chunk in history.chunks():
            db.execute("BEGIN")
            db.executemany(sql, sqlite_rows(chunk))
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        print(f"history: {rows:,} calls in the engine's store ({time.perf_counter() - t0:.0f} s to load, "
              f"rows of {CHUNK:,})", flush=True)
    return ["0" + n[3:] for n in history.lookups(50_000)]


@dataclass
class App:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for_line(app: App, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in app.log.read_text(errors="replace"):
            return
        if app.proc.poll() is not None:
            raise SystemExit(f"{app.name} exited ({app.proc.returncode}):\n{app.log.read_text(errors='replace')}")
        time.sleep(0.2)
    raise SystemExit(f"{app.name} did not say '{text}' within {timeout:.0f} s:\n"
                     f"{app.log.read_text(errors='replace')[-3000:]}")


def start_bare(work: Path, password_file: Path, user: str, *, socket: bool = False) -> App:
    log = work / ("bare-ws.log" if socket else "bare.log")
    media = ",".join(f"sound:ivr/ko/{p}" for p in PROMPTS)
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "bare_ari.py"),
                             "--url", "http://127.0.0.1:8088/ari", "--user", user,
                             "--password-file", str(password_file),
                             "--app", BARE_WS_APP if socket else BARE_APP,
                             "--media", media, "--wait", str(WAIT)] + (["--socket"] if socket else []),
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    app = App("the bare loop" + (" on the socket" if socket else ""), proc, log)
    wait_for_line(app, "ready", 30)
    return app


def start_engine(work: Path, store: Path, password: str, user: str, *, profile: Path | None,
                 extra: str, source: Path | None = None, requests: str = "") -> App:
    """``ivr run`` on a flow of the bench's shape; with ``source``, the ``ivr`` package of that
    checkout (PYTHONPATH), as app ``ivr-before`` (its store: ``fill_history`` with that source)."""
    work = work / ("before" if source else "engine")
    work.mkdir(exist_ok=True)
    flows = work / "flows"
    flows.mkdir()
    (flows / "bench_shape.yaml").write_text(FLOW)
    config = work / "ivr.yaml"
    config.write_text(
        "ari:\n"
        "  url: http://127.0.0.1:8088/ari\n"
        f"  username: {user}\n"
        "  password: ${IVR_BENCH_ARI_PASSWORD}\n"
        f"  app: {BEFORE_APP if source else 'ivr'}\n"
        + (f"  requests: {requests}\n" if requests else "") +
        f"flows: [{flows}]\n"
        f"prompts: {REPO / 'prompts'}\n"
        f"store: {{url: 'sqlite:///{store}'}}\n"
        "log: {format: json, level: info}\n" + extra)
    env = dict(os.environ, IVR_BENCH_ARI_PASSWORD=password)
    for key in ("IVR_ARI_PASSWORD", "IVR_ARI_URL", "IVR_CONFIG", "IVR_STORE_URL", "IVR_FLOWS"):
        env.pop(key, None)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    log = work / "engine.log"
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    proc = subprocess.Popen([sys.executable, *prof, "-m", "ivr.cli", "--config", str(config), "run"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=work)
    app = App(f"the engine ({source})" if source else "the engine", proc, log)
    wait_for_line(app, '"engine.ready"', 120)
    if source is not None:
        imported = subprocess.run([sys.executable, "-c", "import ivr; print(ivr.__file__)"], env=env,
                                  capture_output=True, text=True, cwd=work).stdout.strip()
        if not imported.startswith(str(source)):
            raise SystemExit(f"--before {source}: the engine would import ivr from {imported}")
    return app


def engine_events(log: Path, offset: int) -> tuple[int, int]:
    """(calls shed, calls with a lookup out of budget) in the engine's log after ``offset``."""
    shed, lost = 0, set()
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            if b'"call.shed"' not in line and b'"caller.' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "call.shed":
                shed += 1
            elif event.get("event") in LOSS:
                lost.add(event.get("call_id"))
    return shed, len(lost)


# -- one run ----------------------------------------------------------------------------------

@dataclass
class Run:
    path: str
    rate: float
    calls: int
    ok: int = 0
    failed: int = 0
    shed: int | None = None
    lost: int | None = None
    lengths: list[float] = field(default_factory=list)
    asterisk_cpu: float = 0.0
    app_cpu: float | None = None
    wall: float = 0.0

    def mean(self) -> float:
        return statistics.fmean(self.lengths) if self.lengths else float("nan")

    def p99(self) -> float:
        if not self.lengths:
            return float("nan")
        ordered = sorted(self.lengths)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def sipp_binary() -> str:
    for name in ("sipp", "sip-tester"):
        if found := shutil.which(name):
            return found
    raise SystemExit("SIPp is not installed (Debian package sip-tester)")


def run_calls(path: str, rate: float, seconds: float, *, scenario: Path, callers: Path, work: Path,
              app: App | None) -> Run:
    calls = max(1, round(rate * seconds))
    run = Run(path, rate, calls)
    folder = Path(tempfile.mkdtemp(prefix=f"{path}-{rate:g}-", dir=work))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sip:
        sip.bind(("127.0.0.1", 0))
        sip_port = sip.getsockname()[1]
    argv = [sipp_binary(), "127.0.0.1:5060", "-sf", str(scenario), "-s", NUMBERS[path],
            "-inf", str(callers), "-r", f"{rate:g}", "-rp", "1000", "-m", str(calls), "-l", "20000",
            "-i", "127.0.0.1", "-p", str(sip_port), "-nostdin", "-aa",
            "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-stf", str(folder / "stat.csv"),
            "-timeout", f"{int(seconds + 120)}s", "-timeout_error"]
    offset = app.log.stat().st_size if app is not None and path in ENGINES else 0
    pids = asterisk_pids()
    ast0 = sum(cpu_seconds(p) for p in pids)
    app0 = app.cpu() if app is not None else 0.0
    t0 = time.monotonic()
    subprocess.run(argv, cwd=folder, stdout=subprocess.DEVNULL, stderr=(folder / "sipp.err").open("wb"))
    wait_for_no_channels()
    run.wall = time.monotonic() - t0
    run.asterisk_cpu = sum(cpu_seconds(p) for p in pids) - ast0
    if app is not None:
        run.app_cpu = app.cpu() - app0
    for rtt in folder.glob("*_rtt.csv"):
        for line in rtt.read_text().splitlines():
            parts = line.split(";")
            if len(parts) >= 2:
                with contextlib.suppress(ValueError):
                    run.lengths.append(float(parts[1]) / 1000)
    run.ok = len(run.lengths)
    run.failed = calls - run.ok
    if path in ENGINES and app is not None:
        time.sleep(0.5)                 # the last lines reach the log file
        run.shed, run.lost = engine_events(app.log, offset)
    return run


# -- printing ---------------------------------------------------------------------------------

def ms(seconds: float | None, calls: int) -> str:
    if seconds is None or calls == 0:
        return "-"
    return f"{seconds / calls * 1000:.2f} ms"


def added(value: float, reference: float) -> str:
    return f"{value - reference:+.2f} s" if value == value and reference == reference else "-"


def print_rate(runs: list[Run], reference: dict[str, float]) -> None:
    rate = runs[0].rate
    print(f"\n{rate:g} calls/s, {runs[0].calls:,} calls a path")
    print(f"  {'path':<7} {'ok':>6} {'failed':>7} {'turned away':>12} {'added mean':>11} {'added p99':>10} "
          f"{'Asterisk CPU/call':>18} {'app CPU/call':>13} {'lookups out of budget':>22}")
    for r in runs:
        served = max(1, r.ok)
        print(f"  {r.path:<7} {r.ok:>6} {r.failed:>7} {('-' if r.shed is None else r.shed):>12} "
              f"{added(r.mean(), reference[r.path]):>11} {added(r.p99(), reference[r.path]):>10} "
              f"{ms(r.asterisk_cpu, served):>18} {ms(r.app_cpu, served):>13} "
              f"{('-' if r.lost is None else r.lost):>22}", flush=True)


def print_ratios(results: dict[float, dict[str, Run]], reference: dict[str, float]) -> None:
    for engine, bare in [(e, b) for b in ("bare", "bare-ws") for e in ENGINES]:
        rates = [rate for rate, runs in results.items() if engine in runs and bare in runs]
        if not rates:
            continue
        print(f"\n{engine} ÷ {'bare loop' if bare == 'bare' else 'bare loop on the socket'}")
        print(f"  {'calls/s':>8} {'app CPU/call':>13} {'Asterisk CPU/call':>18} {'added mean':>22} "
              f"{'within 2 × bare + 50 ms':>24}")
        for rate in rates:
            e, b = results[rate][engine], results[rate][bare]
            cpu = ((e.app_cpu or 0) / max(1, e.ok)) / ((b.app_cpu or 0) / max(1, b.ok) or float("nan"))
            ast = (e.asterisk_cpu / max(1, e.ok)) / (b.asterisk_cpu / max(1, b.ok) or float("nan"))
            ea, ba = e.mean() - reference[engine], b.mean() - reference[bare]
            within = "yes" if ea <= 2 * max(ba, 0) + 0.05 else "no"
            print(f"  {rate:>8g} {cpu:>12.2f}× {ast:>17.2f}× {f'{ea:+.3f} s vs {ba:+.3f} s':>22} {within:>24}")


# -- main -------------------------------------------------------------------------------------

@contextlib.contextmanager
def sandbox_lock() -> Iterator[None]:
    with LOCK.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {LOCK} (an end-to-end test run holds the sandbox)", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rates", default="40,120,200,300", help="calls per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=15, help="seconds of new calls per path and rate")
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--reference-rate", type=float, default=5)
    parser.add_argument("--history", type=int, default=1_000_000, help="calls in the engine's store")
    parser.add_argument("--rtp-ports", type=int, default=20_000)
    parser.add_argument("--profile", type=Path, help="run the engine under cProfile, stats to this file")
    parser.add_argument("--engine-config", default="", help="YAML appended to the engine's ivr.yaml")
    parser.add_argument("--engine-requests", default="", choices=("", "http", "socket"),
                        help="ari.requests of the engine path (default: the engine's default)")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="also run the engine of another checkout (e.g. 'git worktree add DIR REV'), "
                             "as the path 'before', interleaved with the others")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    paths = [p for p in args.paths.split(",") if p]
    if args.before is not None:
        args.before = args.before.resolve()
        if not (args.before / "ivr" / "__init__.py").is_file():
            raise SystemExit(f"--before {args.before}: no ivr package there")
        paths.append("before")
    if unknown := set(paths) - set(PATHS) - set(MORE_PATHS) - {"before"}:
        raise SystemExit(f"unknown paths: {', '.join(sorted(unknown))} "
                         f"(one of {', '.join(PATHS + MORE_PATHS)})")
    if os.geteuid() != 0:
        raise SystemExit("run as root: the sandbox Asterisk needs it")
    sipp_binary()
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, rates {args.rates} calls/s, "
          f"{args.seconds:g} s a run, paths {', '.join(paths)}", flush=True)
    with sandbox_lock(), tempfile.TemporaryDirectory(prefix="ivr-asterisk-load-") as tmp:
        work = Path(tmp)
        was_up = subprocess.run([sys.executable, "-m", "ivr.cli", "sandbox", "status"], cwd=REPO,
                                capture_output=True).returncode == 0
        up = ivr("sandbox", "up", "--rtp-ports", str(args.rtp_ports)).splitlines()
        print(*(line for line in up if "RTP" in line), flush=True)
        user = os.environ.get("IVR_ARI_USER", "ivr")
        password_file = REPO / ".sandbox" / "ari-password"
        password = os.environ.get("IVR_ARI_PASSWORD") or password_file.read_text().strip()
        if os.environ.get("IVR_ARI_PASSWORD"):
            password_file = work / "ari-password"
            password_file.write_text(password)
        media_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        media_sink.bind(("127.0.0.1", 0))
        scenario = work / "load_caller.xml"
        scenario.write_text((REPO / "bench" / "sipp" / "load_caller.xml").read_text()
                            .replace("@MEDIA_PORT@", str(media_sink.getsockname()[1]))
                            .replace("@BYE_WAIT_MS@", str((WAIT + 25) * 1000)))
        apps: dict[str, App] = {}
        try:
            numbers = fill_history(work / "engine" / "ivr.db", args.history if set(ENGINES) & set(paths) else 0)
            if "before" in paths:
                fill_history(work / "before" / "ivr.db", args.history, args.before)
            callers = work / "callers.csv"
            callers.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
            add_native_path()
            if "bare" in paths:
                apps["bare"] = start_bare(work, password_file, user)
            if "bare-ws" in paths:
                apps["bare-ws"] = start_bare(work, password_file, user, socket=True)
            if "engine" in paths:
                apps["engine"] = start_engine(work, work / "engine" / "ivr.db", password, user,
                                              profile=args.profile, extra=args.engine_config,
                                              requests=args.engine_requests)
            if "before" in paths:
                apps["before"] = start_engine(work, work / "before" / "ivr.db", password, user, profile=None,
                                              extra=args.engine_config, source=args.before)
            wait_for_no_channels()
            reference: dict[str, float] = {}
            print(f"\nreference: {args.reference_rate:g} calls/s for 6 s a path", flush=True)
            for path in paths:
                ref = run_calls(path, args.reference_rate, 6, scenario=scenario, callers=callers, work=work,
                                app=apps.get(path))
                reference[path] = ref.mean()
                print(f"  {path:<7} call length {ref.mean():.3f} s (p99 {ref.p99():.3f} s), "
                      f"{ref.ok} ok, {ref.failed} failed", flush=True)
            results: dict[float, dict[str, Run]] = {}
            for i, rate in enumerate(rates):
                order = paths[i % len(paths):] + paths[:i % len(paths)]
                runs = {path: run_calls(path, rate, args.seconds, scenario=scenario, callers=callers,
                                        work=work, app=apps.get(path)) for path in order}
                results[rate] = runs
                print_rate([runs[p] for p in paths], reference)
            print_ratios(results, reference)
        finally:
            for app in apps.values():
                app.stop()
            remove_paths()
            media_sink.close()
            if not was_up:
                ivr("sandbox", "down", check=False)
    if args.profile:
        import pstats
        print(f"\nthe engine under cProfile ({args.profile}; its CPU figures above include the profiler's):")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
