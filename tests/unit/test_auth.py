"""Wallboard users: the users file, password hashes, the log-in limit and sessions."""

from __future__ import annotations

import os
import stat

import pytest

from ivr.web.auth import (FAILURES, LOCKOUT, WINDOW, LoginLimiter, Role, Sessions, User,
                          UserDirectory, UsersError, check_password, hash_password, read_users,
                          write_users)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_password_is_kept_as_an_argon2id_hash_that_only_it_matches():
    h = hash_password("correct horse battery")
    assert h.startswith("$argon2id$") and "correct" not in h
    assert check_password(h, "correct horse battery")
    assert not check_password(h, "correct horse batterY")
    assert not check_password("not a hash", "correct horse battery")
    with pytest.raises(ValueError, match="at least 10"):
        hash_password("short")


def test_the_users_file_is_written_for_its_owner_only_and_read_back(tmp_path):
    path = tmp_path / "users.yaml"
    users = [User("kim", Role.SUPERVISOR, hash_password("supervisor-pass")),
             User("wall", Role.VIEWER, hash_password("viewer-pass-1"))]
    write_users(path, users)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert list(read_users(path).values()) == users
    assert "supervisor-pass" not in path.read_text()


@pytest.mark.parametrize("text, message", [
    ("users: [{name: kim, role: boss, password_hash: '$argon2id$x'}]", "role must be viewer, supervisor or"),
    ("users: [{name: kim, role: viewer}]", "exactly name, role and password_hash"),
    ("users: [{name: kim, role: viewer, password_hash: secret}]", "must be an argon2 hash"),
    ("users: [{name: 'a b', role: viewer, password_hash: '$argon2id$x'}]", "user name"),
    ("users: [{name: kim, role: viewer, password_hash: '$argon2id$x'},"
     " {name: kim, role: supervisor, password_hash: '$argon2id$y'}]", "named twice"),
    ("people: []", "one key, users"),
])
def test_a_wrong_users_file_is_refused_with_the_entry_named(tmp_path, text, message):
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(UsersError, match=message) as err:
        read_users(path)
    assert str(path) in str(err.value)


def test_the_directory_follows_the_file_and_keeps_the_last_good_users_on_a_broken_edit(tmp_path):
    path = tmp_path / "users.yaml"
    write_users(path, [User("kim", Role.SUPERVISOR, hash_password("supervisor-pass"))])
    users = UserDirectory(path)
    assert users.verify("kim", "supervisor-pass").role == Role.SUPERVISOR
    assert users.verify("kim", "wrong-password") is None
    assert users.verify("nobody", "supervisor-pass") is None
    write_users(path, [User("lee", Role.VIEWER, hash_password("viewer-pass-1"))])
    assert users.get("kim") is None and users.get("lee").role == Role.VIEWER
    path.write_text("users: [{name: lee}]")            # broken: lee stays
    assert users.get("lee") is not None
    path.unlink()                                      # gone: nobody
    assert users.get("lee") is None and len(users) == 0


def test_five_refused_log_ins_lock_the_name_for_five_minutes():
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    for _ in range(FAILURES - 1):
        assert limiter.retry_after("kim", "10.0.0.1") is None
        assert not limiter.failed("kim", "10.0.0.1")
        clock.now += 10
    assert limiter.failed("kim", "10.0.0.2")            # the 5th for the name
    assert limiter.retry_after("kim", "10.0.0.3") == pytest.approx(LOCKOUT)
    assert limiter.retry_after("lee", "10.0.0.3") is None          # other names, other places
    clock.now += LOCKOUT - 1
    assert limiter.retry_after("kim", None) == pytest.approx(1)
    clock.now += 1
    assert limiter.retry_after("kim", None) is None


def test_failures_further_apart_than_the_window_never_lock_and_a_success_clears_the_count():
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    for _ in range(3 * FAILURES):
        assert not limiter.failed("kim", None)
        clock.now += WINDOW / (FAILURES - 1) + 1
    for _ in range(FAILURES - 1):
        limiter.failed("lee", None)
    limiter.succeeded("lee")
    assert not limiter.failed("lee", None)


def test_one_address_trying_many_names_is_locked():
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    for i in range(FAILURES):
        limiter.failed(f"user{i}", "192.0.2.9")
    assert limiter.retry_after("kim", "192.0.2.9") == pytest.approx(LOCKOUT)
    assert limiter.retry_after("kim", "192.0.2.10") is None


def test_the_limiter_remembers_a_bounded_number_of_names():
    limiter = LoginLimiter(clock=Clock(), tracked=100)
    for i in range(1000):
        limiter.failed(f"guess{i}", None)
    assert limiter.remembered() <= 100


def test_a_session_ends_after_its_hours_and_the_oldest_goes_first_when_full():
    clock = Clock()
    sessions = Sessions(2, clock=clock, limit=3)
    kim = User("kim", Role.SUPERVISOR, "$argon2id$x")
    s = sessions.open(kim, "127.0.0.1")
    assert sessions.get(s.id) == s and s.csrf_ok(s.csrf) and not s.csrf_ok("x") and not s.csrf_ok(None)
    clock.now += 2 * 3600 - 1
    assert sessions.get(s.id) is not None
    clock.now += 1
    assert sessions.get(s.id) is None
    first = sessions.open(kim, None)
    for _ in range(3):
        sessions.open(kim, None)
    assert sessions.get(first.id) is None and len(sessions) == 3
