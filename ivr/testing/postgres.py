"""A throw-away PostgreSQL server for tests and benchmarks.

``running_postgres()`` creates a cluster in a new temporary folder (``initdb``), starts it on a
free loopback port with its unix socket in that folder, and on exit stops it and removes the
folder.  It uses the server binaries of the Debian ``postgresql`` package
(``/usr/lib/postgresql/*/bin``, the newest version) and never touches the package's own
cluster (port 5432, ``/var/run/postgresql``): that one may run or not.

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` system user
(``runuser -u postgres --``), otherwise as the current user.  ``unavailable_reason()`` says why
a server cannot be started here, or returns None.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

SUPERUSER = "postgres"

# Settings for a server whose data may be lost: no fsync, quick to start and stop.
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started on this machine (binaries or system user missing)."""


def find_bindir() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``: Debian's newest, else PATH."""
    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


def _run_as() -> str | None:
    """The system user to run the server as (None: the current user)."""
    if os.geteuid() != 0:
        return None
    return SUPERUSER


def unavailable_reason() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None when it can."""
    bindir = find_bindir()
    if bindir is None:
        return ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
                "install the Debian package 'postgresql' (scripts/setup does)")
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (bindir / tool).exists():
            return f"PostgreSQL: {bindir / tool} is missing"
    user = _run_as()
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return (f"running as root, PostgreSQL needs the system user {user!r} to run the "
                    "server, and there is none (the Debian package 'postgresql' creates it)")
        if shutil.which("runuser") is None and shutil.which("su") is None:
            return "running as root, neither runuser nor su is there to run PostgreSQL as 'postgres'"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class PostgresServer:
    """One temporary cluster: ``root/data``, ``root/server.log``, and the socket in ``root``."""

    bindir: Path
    root: Path
    port: int
    user: str | None                      # system user the server runs as (None: ourselves)
    host: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    # -- processes ---------------------------------------------------------------------------
    def _command(self, *args: str) -> list[str]:
        if self.user is None:
            return list(args)
        if shutil.which("runuser"):
            return ["runuser", "-u", self.user, "--", *args]
        return ["su", self.user, "-s", "/bin/sh", "-c", shlex.join(args)]

    def _pg(self, tool: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        cmd = self._command(str(self.bindir / tool), *args)
        done = subprocess.run(cmd, cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}{self._log_tail()}")
        return done

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n--- server.log ---\n" + "\n".join(text) if text else ""

    def initdb(self, settings: Mapping[str, str]) -> None:
        self._pg("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                 "--no-locale", "--no-sync")
        conf = {"listen_addresses": f"'{self.host}'", "port": str(self.port),
                "unix_socket_directories": f"'{self.root}'", "logging_collector": "off"}
        conf.update(settings)
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write("\n# ivr.testing.postgres\n")
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_file), "-w", "-t", "60",
                 "-s")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: end sessions; ``immediate``: like a crash)."""
        self._pg("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "-s")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def pause(self) -> None:
        """Freeze the server and its sessions (SIGSTOP): it accepts TCP but answers nothing."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        main = self.postmaster_pid()
        if main is None:
            raise RuntimeError(f"PostgreSQL in {self.data} is not running")
        pids = [main]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(main):           # field 4 of stat: the parent's pid
                pids.append(int(Path(stat).parent.name))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    # -- databases ---------------------------------------------------------------------------
    async def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import asyncpg

        conn = await asyncpg.connect(self.url(), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    async def drop_database(self, name: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url(), timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@contextlib.contextmanager
def running_postgres(settings: Mapping[str, str] = FAST_SETTINGS) -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server for the block; stopped and removed afterwards."""
    reason = unavailable_reason()
    if reason is not None:
        raise PostgresUnavailable(reason)
    bindir = find_bindir()
    assert bindir is not None
    user = _run_as()
    # Under the system temporary folder (world-traversable), not a private pytest folder: the
    # server's user must reach it.
    root = Path(tempfile.mkdtemp(prefix="ivr-pg-", dir=tempfile.gettempdir()))
    server = PostgresServer(bindir=bindir, root=root, port=free_port(), user=user)
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        root.chmod(0o700)
        server.initdb(settings)
        server.start()
        yield server
    finally:
        try:
            if server.running:
                server.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)
