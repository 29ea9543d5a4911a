"""The ``callbacks:`` section of the config: defaults, opening hours, clear errors."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.errors import ConfigError


def load(tmp_path: Path, section: str = "", callers: str = ""):
    text = "ari: {username: ivr, password: x}\n" + callers + section
    p = tmp_path / "ivr.yaml"
    p.write_text(text, encoding="utf-8")
    return load_config(p, env={}).callbacks


def seoul(*args: int) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(*args, tzinfo=ZoneInfo("Asia/Seoul"))


def test_defaults(tmp_path):
    cb = load(tmp_path)
    assert cb.owner == socket.gethostname()
    assert (cb.lease, cb.poll, cb.ring_timeout) == (60.0, 2.0, 30.0)
    assert (cb.retry.max_attempts, cb.retry.delay) == (3, dt.timedelta(seconds=600))
    assert cb.allow_international is False and cb.caller_id is None
    assert cb.hours.tz.key == "Asia/Seoul" and cb.hours.holidays == frozenset()
    # Monday to Friday, 09:00-18:00.
    assert cb.hours.is_open(seoul(2025, 3, 7, 17, 59))
    assert not cb.hours.is_open(seoul(2025, 3, 7, 18, 0))
    assert not cb.hours.is_open(seoul(2025, 3, 8, 10, 0))


def test_every_setting(tmp_path):
    cb = load(tmp_path, """
callbacks:
  owner: ivr-2
  lease: 90
  poll: 0.5
  max_attempts: 5
  retry_delay: 300
  ring_timeout: 25
  allow_international: true
  caller_id: '0212345678'
  hours:
    mon: ["09:00-12:00", "13:00-18:00"]
    tue: ["9:00-18:00"]
    wed: "09:00 - 18:00"
    sat: ["10:00-14:00"]
    sun: []
    fri: ["20:00-24:00"]
  holidays: [2025-03-03, '2025-05-05']
""", callers="callers: {timezone: Europe/Berlin}\n")
    assert (cb.owner, cb.lease, cb.poll, cb.ring_timeout) == ("ivr-2", 90.0, 0.5, 25.0)
    assert (cb.retry.max_attempts, cb.retry.delay) == (5, dt.timedelta(minutes=5))
    assert cb.allow_international is True and cb.caller_id == "0212345678"
    assert cb.hours.tz.key == "Europe/Berlin"
    assert cb.hours.weekly[0] == [(dt.time(9), dt.time(12)), (dt.time(13), dt.time(18))]
    assert cb.hours.weekly[1] == cb.hours.weekly[2] == [(dt.time(9), dt.time(18))]
    assert cb.hours.weekly[4] == [(dt.time(20), dt.time.max)]
    assert 3 not in cb.hours.weekly and 6 not in cb.hours.weekly      # closed
    assert cb.hours.holidays == {dt.date(2025, 3, 3), dt.date(2025, 5, 5)}


def test_a_caller_id_given_as_a_number_is_kept_as_digits(tmp_path):
    assert load(tmp_path, "callbacks: {caller_id: 15771000}\n").caller_id == "15771000"


@pytest.mark.parametrize("section, message", [
    ("callbacks: {hours: {mon: ['9-18']}}", "callbacks.hours.mon: '9-18' is not HH:MM-HH:MM"),
    ("callbacks: {hours: {mon: ['18:00-09:00']}}", "callbacks.hours.mon: '18:00-09:00' does not end"),
    ("callbacks: {hours: {mon: ['09:00-25:00']}}", "not a time of day"),
    ("callbacks: {hours: {mon: ['09:00-13:00', '12:00-18:00']}}", "overlap"),
    ("callbacks: {hours: {monday: ['09:00-18:00']}}", "'monday' is not a weekday"),
    ("callbacks: {hours: {mon: [], sun: []}}", "no day has opening hours"),
    ("callbacks: {hours: ['09:00-18:00']}", "callbacks.hours must be a mapping"),
    ("callbacks: {hours: {mon: [900]}}", "callbacks.hours.mon: 900 is not HH:MM-HH:MM"),
    ("callbacks: {holidays: ['2025-02-30']}", "callbacks.holidays: '2025-02-30' is not a date"),
    ("callbacks: {holidays: 2025-01-01}", "callbacks.holidays must be a list"),
    ("callbacks: {lease: 0}", "callbacks.lease must be more than 0"),
    ("callbacks: {poll: soon}", "callbacks.poll must be a number of seconds"),
    ("callbacks: {retry_delay: -5}", "callbacks.retry_delay"),
    ("callbacks: {max_attempts: 0}", "callbacks.max_attempts must be a whole number"),
    ("callbacks: {max_attempts: 2.5}", "callbacks.max_attempts"),
    ("callbacks: {allow_international: 'yes'}", "callbacks.allow_international must be true or false"),
    ("callbacks: {caller_id: '1577-1000'}", "callbacks.caller_id must be a phone number"),
    ("callbacks: {owner: ''}", "callbacks.owner"),
    ("callbacks: {ring_timout: 20}", "unknown key(s) in 'callbacks': ring_timout"),
    ("callbacks: [1]", "'callbacks' must be a mapping"),
])
def test_mistakes_are_named(tmp_path, section, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, section + "\n")
    assert message in str(err.value)


def test_callbacks_is_a_known_top_level_key(tmp_path):
    p = tmp_path / "ivr.yaml"
    p.write_text("ari: {username: ivr, password: x}\ncallback: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="callbacks"):
        load_config(p, env={})


def test_the_endpoint_says_where_the_number_goes(tmp_path):
    assert load(tmp_path).endpoint is None                   # no callbacks offered
    cb = load(tmp_path, "callbacks: {endpoint: 'PJSIP/{national}@trunk'}\n")
    assert cb.endpoint == "PJSIP/{national}@trunk"
    assert load(tmp_path, "callbacks: {endpoint: 'PJSIP/trunk/sip:{e164}@carrier'}\n").endpoint


@pytest.mark.parametrize("endpoint, message", [
    ("'01012345678'", "must be an Asterisk channel"),
    ("'PJSIP/trunk'", "must say where the number goes"),
    ("'PJSIP/{number}@trunk'", "must say where the number goes"),
    ("'PJSIP/{national@trunk'", "callbacks.endpoint"),
])
def test_an_endpoint_that_cannot_dial_a_number_is_refused(tmp_path, endpoint, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, f"callbacks: {{endpoint: {endpoint}}}\n")
    assert message in str(err.value)


# -- public holidays ---------------------------------------------------------------------------------

def test_no_callbacks_on_korean_public_holidays_by_default(tmp_path):
    hours = load(tmp_path).hours
    assert not hours.is_open(seoul(2026, 9, 25, 10, 0))      # Chuseok 2026, a Friday
    assert not hours.is_open(seoul(2026, 9, 24, 10, 0))      # its eve
    assert not hours.is_open(seoul(2027, 2, 8, 10, 0))       # Seollal 2027, a Monday
    assert not hours.is_open(seoul(2027, 2, 9, 10, 0))       # its substitute holiday
    assert hours.is_open(seoul(2026, 9, 15, 10, 0))          # an ordinary Tuesday


def test_a_date_in_the_config_is_closed_as_well(tmp_path):
    hours = load(tmp_path, "callbacks: {holidays: ['2026-09-15']}\n").hours
    assert not hours.is_open(seoul(2026, 9, 15, 10, 0))      # the center's own date
    assert not hours.is_open(seoul(2026, 9, 25, 10, 0))      # and still Chuseok
    assert hours.is_open(seoul(2026, 9, 16, 10, 0))


def test_the_public_calendar_can_be_turned_off(tmp_path):
    hours = load(tmp_path, "callbacks: {public_holidays: false, holidays: ['2026-09-15']}\n").hours
    assert hours.is_open(seoul(2026, 9, 25, 10, 0))          # Chuseok: open
    assert not hours.is_open(seoul(2026, 9, 15, 10, 0))      # the config's dates still count


def test_the_calendar_follows_callers_region(tmp_path):
    german = load(tmp_path, callers="callers: {region: DE, timezone: Europe/Berlin}\n").hours
    berlin = dt.timezone(dt.timedelta(hours=2))
    assert german.is_open(dt.datetime(2026, 9, 25, 10, 0, tzinfo=berlin))   # no Chuseok in Germany
    assert not german.is_open(dt.datetime(2026, 12, 25, 10, 0, tzinfo=dt.UTC))  # Christmas


@pytest.mark.parametrize("section, message", [
    ("callbacks: {public_holidays: KR}", "callbacks.public_holidays must be true"),
    ("callbacks: {public_holidays: none}", "callbacks.public_holidays must be true"),
])
def test_public_holidays_is_true_or_false(tmp_path, section, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, section + "\n")
    assert message in str(err.value)


def test_a_region_without_a_calendar_says_how_to_go_on(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, callers="callers: {region: AC}\n")
    assert "no calendar for callers.region AC" in str(err.value)
    assert "public_holidays: false" in str(err.value)
    assert load(tmp_path, "callbacks: {public_holidays: false}\n", callers="callers: {region: AC}\n")


def test_the_public_calendar_can_be_turned_off_from_the_environment(tmp_path):
    p = tmp_path / "ivr.yaml"
    p.write_text("ari: {username: ivr, password: x}\n", encoding="utf-8")
    hours = load_config(p, env={"IVR_CALLBACKS_PUBLIC_HOLIDAYS": "false"}).callbacks.hours
    assert hours.is_open(seoul(2026, 9, 25, 10, 0))          # Chuseok: open
