"""Wallboard users: who may log in, with which role, their sessions, and the audit log.

The users file (``admin.users_file``), written by ``ivr users add|remove``::

    users:
      - {name: kim, role: supervisor, password_hash: "$argon2id$v=19$m=65536,t=3,p=4$…"}
      - {name: wall, role: viewer, password_hash: "$argon2id$…"}

Passwords are kept only as argon2id hashes (argon2-cffi's defaults).  There is no default user
and no default password: without the file the wallboard is off (``wallboard.off`` in the log).
The file is read again when it changes on disk, so ``ivr users add|remove`` takes effect on a
running engine; a removed user's sessions end at their next request, a user whose role changed
must log in again.

Roles: ``viewer`` reads the wallboard (numbers masked); ``supervisor`` also pauses, resumes and
logs out agents, cancels reservations and sees a waiting caller's full number; ``interpreter``
is a sign-language interpreter whose user name is their agent id: they log in on the video
entrance's agent page (``ivr.web.video``) only, never on the wallboard.  The server
checks the role on every action, whatever the page shows.

Sessions live in the engine's memory (a restart or a fail-over asks everyone to log in again):
a random id of 256 bits in a cookie (``HttpOnly``, ``SameSite=Strict``, ``Path=/wallboard/``),
ending ``admin.session_hours`` after the log-in.  Every action also needs the session's own
CSRF token (random, sent by the page in the ``X-CSRF-Token`` header): a cookie alone does not
act.

Log-in attempts (``LoginLimiter``): ``FAILURES`` (5) refused attempts within ``WINDOW`` (5 min)
for one user name, or from one client address, lock that name or address for ``LOCKOUT``
(5 min): every attempt meanwhile is answered 429 with ``Retry-After``, without checking the
password.  A successful log-in clears its user name's count (not the address's).

Every log-in, refused log-in, log-out and action goes to the audit log (``Store.record_audit``,
``AuditEntry``) and to the structured log (``audit.<action>``).  A store that refuses the entry
does not stop the action: the structured log still has it, and ``audit.not_stored`` says so.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import hmac
import os
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ivr.call import utcnow
from ivr.errors import ConfigError, FlowError, IvrError
from ivr.store.base import AuditEntry

log = structlog.get_logger("ivr.web.auth")

__all__ = ["Role", "User", "UsersError", "read_users", "write_users", "hash_password",
           "check_password", "UserDirectory", "Session", "Sessions", "LoginLimiter", "Audit",
           "MIN_PASSWORD", "FAILURES", "WINDOW", "LOCKOUT"]

MIN_PASSWORD = 10          # characters, at least
MAX_PASSWORD = 1024
FAILURES = 5               # refused attempts …
WINDOW = 300.0             # … within this many seconds …
LOCKOUT = 300.0            # … lock the user name or the address this long
MAX_TRACKED = 10_000       # user names and addresses remembered by the limiter, at most
MAX_SESSIONS = 1_000       # open sessions, at most (the oldest ends first)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


class Role(enum.StrEnum):
    VIEWER = "viewer"
    SUPERVISOR = "supervisor"
    INTERPRETER = "interpreter"     # the video entrance's agent page only (its name: the agent id)


class UsersError(ConfigError):
    """The users file cannot be read, or says something impossible."""


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    password_hash: str = dataclasses.field(repr=False)


def check_name(name: str) -> str:
    """A user name: 1 to 64 letters, digits and ``. _ - @``; else ``ValueError``."""
    if not 1 <= len(name) <= 64 or not set(name) <= _NAME_CHARS:
        raise ValueError(f"a user name is 1 to 64 letters, digits, '.', '_', '-' or '@', not {name!r}")
    return name


_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (``ValueError`` when shorter than ``MIN_PASSWORD``)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"a password has at most {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches the hash (a malformed hash matches nothing).  Slow on
    purpose (tens of milliseconds): call it off the event loop."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Checked for a name nobody has, so that an unknown name takes as long as a wrong password.
_NOBODY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def read_users(path: Path) -> dict[str, User]:
    """The users of the file, by name; ``UsersError`` naming the file (and entry) when wrong."""
    from ivr.flow.yamlsafe import load_yaml_file

    try:
        raw = load_yaml_file(path, "the users file")
    except FlowError as exc:
        raise UsersError(str(exc)) from None
    if raw is None:
        return {}
    entries = raw.get("users") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or set(raw) - {"users"} or not isinstance(entries, list | type(None)):
        raise UsersError(f"{path}: the users file is a mapping with one key, users: a list of "
                         f"{{name, role, password_hash}}")
    users: dict[str, User] = {}
    for i, entry in enumerate(entries or []):
        where = f"{path}: users[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "role", "password_hash"}:
            raise UsersError(f"{where} must have exactly name, role and password_hash")
        name, role, hashed = entry["name"], entry["role"], entry["password_hash"]
        try:
            check_name(name if isinstance(name, str) else "")
        except ValueError as exc:
            raise UsersError(f"{where}: {exc}") from None
        if role not in set(Role):
            raise UsersError(f"{where}: role must be viewer, supervisor or interpreter, not {role!r}")
        if not isinstance(hashed, str) or not hashed.startswith("$argon2"):
            raise UsersError(f"{where}: password_hash must be an argon2 hash, as 'ivr users add' writes it")
        if name in users:
            raise UsersError(f"{where}: the user {name!r} is named twice")
        users[name] = User(name, Role(role), hashed)
    return users


def write_users(path: Path, users: Iterable[User]) -> None:
    """Write the users file whole, readable by its owner only, replacing the old one at once."""
    import yaml

    body = {"users": [{"name": u.name, "role": str(u.role), "password_hash": u.password_hash}
                      for u in users]}
    text = ("# Wallboard users ('ivr users add|list|remove'); passwords as argon2id hashes.\n"
            + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=200))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class UserDirectory:
    """The users file, read again when it changes (its modification time, size or inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, User] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the file again if it changed; a broken edit keeps the users read before (and
        says so in the log), a removed file leaves nobody."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self._users:
                log.warning("wallboard.users_file_gone", file=str(self.path))
            self._stamp, self._users = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            users = read_users(self.path)
        except IvrError as exc:
            if self._stamp is None and not self._users:
                raise
            log.error("wallboard.users_file_rejected", file=str(self.path), problem=str(exc))
            self._stamp = stamp
            return
        self._stamp, self._users = stamp, users

    def get(self, name: str) -> User | None:
        self.refresh()
        return self._users.get(name)

    def __len__(self) -> int:
        return len(self._users)

    def verify(self, name: str, password: str) -> User | None:
        """The user when the name and password match; as slow for an unknown name."""
        user = self.get(name)
        ok = check_password(user.password_hash if user else _NOBODY_HASH, password)
        return user if ok and user is not None else None


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    id: str = dataclasses.field(repr=False)
    user: str
    role: Role
    csrf: str = dataclasses.field(repr=False)
    expires: float            # on the sessions' clock
    source: str | None = None

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                                         self.csrf.encode())


class Sessions:
    """Open sessions by id, each ending ``hours`` after it began (``clock``: seconds)."""

    def __init__(self, hours: float, *, clock: Callable[[], float] = time.monotonic,
                 limit: int = MAX_SESSIONS) -> None:
        self.lifetime = hours * 3600.0
        self.clock = clock
        self.limit = limit
        self._open: collections.OrderedDict[str, Session] = collections.OrderedDict()

    def open(self, user: User, source: str | None) -> Session:
        while len(self._open) >= self.limit:
            self._open.popitem(last=False)
        s = Session(secrets.token_urlsafe(32), user.name, user.role, secrets.token_urlsafe(32),
                    self.clock() + self.lifetime, source)
        self._open[s.id] = s
        return s

    def get(self, session_id: str | None) -> Session | None:
        s = self._open.get(session_id) if session_id else None
        if s is not None and s.expires <= self.clock():
            del self._open[s.id]
            return None
        return s

    def close(self, session_id: str) -> Session | None:
        return self._open.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._open)


class LoginLimiter:
    """``failures`` refused log-ins within ``window`` seconds, for one user name or from one
    address, lock it for ``lockout`` seconds (see the module docstring)."""

    def __init__(self, *, failures: int = FAILURES, window: float = WINDOW, lockout: float = LOCKOUT,
                 clock: Callable[[], float] = time.monotonic, tracked: int = MAX_TRACKED) -> None:
        self.failures, self.window, self.lockout = failures, window, lockout
        self.clock = clock
        self.tracked = tracked
        self._failed: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._locked: dict[str, float] = {}

    @staticmethod
    def _keys(user: str, address: str | None) -> list[str]:
        return [f"user:{user}"] + ([f"addr:{address}"] if address else [])

    def retry_after(self, user: str, address: str | None) -> float | None:
        """Seconds until a locked name or address may try again; None: it may try now."""
        now = self.clock()
        waits = []
        for key in self._keys(user, address):
            until = self._locked.get(key)
            if until is not None:
                if until > now:
                    waits.append(until - now)
                else:
                    del self._locked[key]
        return max(waits) if waits else None

    def failed(self, user: str, address: str | None) -> bool:
        """Count a refused attempt; True when it locked the name or the address."""
        now = self.clock()
        locked = False
        for key in self._keys(user, address):
            times = self._failed.pop(key, None) or collections.deque()
            while times and times[0] <= now - self.window:
                times.popleft()
            times.append(now)
            if len(times) >= self.failures:
                self._locked[key] = now + self.lockout
                times.clear()
                locked = True
            else:
                self._failed[key] = times              # newest last
        while len(self._failed) > self.tracked:
            self._failed.popitem(last=False)
        if len(self._locked) > self.tracked:
            self._locked = {k: t for k, t in self._locked.items() if t > now}
        return locked

    def succeeded(self, user: str) -> None:
        self._failed.pop(f"user:{user}", None)

    def remembered(self) -> int:
        """How many names and addresses have refused attempts counted now."""
        return len(self._failed)


class AuditLog(Protocol):
    async def record_audit(self, entry: AuditEntry) -> None: ...


class Audit:
    """Writes each entry to the store's audit log and to the structured log."""

    def __init__(self, store: AuditLog | None, *, now: Callable[[], Any] = utcnow) -> None:
        self.store = store
        self.now = now

    async def record(self, user: str, role: str, action: str, *, target: str | None = None,
                     detail: str = "", source: str | None = None) -> None:
        entry = AuditEntry(self.now(), user, str(role), action, target, detail, source)
        log.info("audit." + action, user=user, role=str(role), target=target, detail=detail,
                 source=source)
        if self.store is None:
            return
        try:
            await self.store.record_audit(entry)
        except IvrError as exc:
            log.error("audit.not_stored", action=action, user=user, error=str(exc))
