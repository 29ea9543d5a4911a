"""The ``wellness:`` section of the config: campaigns, their defaults and clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.config import load_config
from ivr.errors import ConfigError

ACD = """
acd:
  priorities: [elderly, normal]
  queues:
    general: {skills: [general]}
    wellness: {skills: [wellness]}
"""


def load(tmp_path: Path, section: str, extra: str = ACD):
    p = tmp_path / "ivr.yaml"
    p.write_text("ari: {username: ivr, password: x}\n" + extra + section, encoding="utf-8")
    return load_config(p, env={}).wellness


def seoul(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo("Asia/Seoul"))


def test_no_section_no_campaigns(tmp_path):
    assert load(tmp_path, "").campaigns == ()


def test_a_campaign_with_its_defaults(tmp_path):
    w = load(tmp_path, """
wellness:
  campaigns:
    - {name: seniors, days: [tue, fri], hours: ["10:00-17:00"]}
""")
    (c,) = w.campaigns
    assert w.campaign("seniors") is c
    assert (c.attempts_per_day, c.retry_delay, c.max_concurrent, c.failed_days_to_visit) \
        == (3, dt.timedelta(minutes=30), 2, 3)
    assert (c.queue, c.priority, c.surge) == ("wellness", "elderly", None)
    assert c.hours.tz.key == "Asia/Seoul"
    assert c.hours.is_open(seoul(2026, 3, 3, 10, 0))            # a Tuesday
    assert not c.hours.is_open(seoul(2026, 3, 3, 17, 0))
    assert not c.hours.is_open(seoul(2026, 3, 4, 11, 0))        # a Wednesday
    assert not c.hours.is_open(seoul(2026, 2, 17, 11, 0))       # Seollal, a Tuesday
    with pytest.raises(KeyError):
        w.campaign("other")


def test_every_setting(tmp_path):
    w = load(tmp_path, """
callbacks: {holidays: [2026-03-06], public_holidays: false}
wellness:
  campaigns:
    - name: seniors
      days: [mon, thu]
      hours: ["09:00-12:00", "14:00-18:00"]
      attempts_per_day: 4
      retry_delay: 600
      max_concurrent: 5
      failed_days_to_visit: 2
      queue: general
      priority: normal
      holidays: [2026-03-09]
      surge: {queue: general, pause_over: 120, resume_under: 60}
    - {name: evening, days: wed, hours: "18:00-20:00"}
""", extra=ACD + "callers: {timezone: Europe/Berlin}\n")
    seniors, evening = w.campaigns
    assert (seniors.attempts_per_day, seniors.retry_delay, seniors.max_concurrent,
            seniors.failed_days_to_visit, seniors.queue, seniors.priority) \
        == (4, dt.timedelta(minutes=10), 5, 2, "general", "normal")
    assert seniors.surge is not None
    assert (seniors.surge.queue, seniors.surge.pause_over, seniors.surge.resume_under) \
        == ("general", 120.0, 60.0)
    berlin = ZoneInfo("Europe/Berlin")
    assert seniors.hours.tz == berlin and seniors.hours.public_holidays is None
    assert seniors.hours.holidays == {dt.date(2026, 3, 6), dt.date(2026, 3, 9)}
    assert seniors.hours.is_open(dt.datetime(2026, 3, 12, 15, 0, tzinfo=berlin))     # Thursday
    assert not seniors.hours.is_open(dt.datetime(2026, 3, 12, 13, 0, tzinfo=berlin))
    assert not seniors.hours.is_open(dt.datetime(2026, 3, 9, 10, 0, tzinfo=berlin))  # its holiday
    assert evening.hours.weekly == {2: [(dt.time(18), dt.time(20))]}


@pytest.mark.parametrize(("section", "message"), [
    ("wellness: {campaigns: {name: x}}", "wellness.campaigns must be a list"),
    ("wellness: {campaign: []}", "unknown key"),
    ("wellness: {campaigns: [{name: a, days: [tue]}]}", "wellness.campaigns[1] needs 'hours'"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'], colour: red}]}",
     "unknown key"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10-17']}]}",
     "wellness.campaigns[1].hours.tue: '10-17' is not HH:MM-HH:MM"),
    ("wellness: {campaigns: [{name: a, days: [tues], hours: ['10:00-17:00']}]}",
     "'tues' is not a weekday"),
    ("wellness: {campaigns: [{name: a, days: [], hours: ['10:00-17:00']}]}",
     "days must be a list of weekdays"),
    ("wellness: {campaigns: [{name: a, days: [tue, tue], hours: ['10:00-17:00']}]}",
     "names a day twice"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00']},"
     " {name: a, days: [fri], hours: ['10:00-17:00']}]}", "comes twice"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'], queue: welness}]}",
     "'welness' is not one of acd.queues (general, wellness)"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'], priority: vip}]}",
     "priority must be one of acd.priorities (elderly, normal)"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'], attempts_per_day: 0}]}",
     "attempts_per_day must be a whole number from 1 to 20"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'], retry_delay: 0}]}",
     "retry_delay must be more than 0"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'],"
     " holidays: [2026-13-01]}]}", "wellness.campaigns[1].holidays: '2026-13-01' is not a date"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'],"
     " surge: {queue: general, pause_over: 60}}]}", "surge needs 'resume_under'"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'],"
     " surge: {queue: general, pause_over: 60, resume_under: 60}}]}",
     "resume_under (60) must be below pause_over (60)"),
    ("wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'],"
     " surge: {queue: sales, pause_over: 60, resume_under: 30}}]}", "'sales' is not one of acd.queues"),
])
def test_mistakes_are_named(tmp_path, section, message):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, section + "\n")
    assert message in str(caught.value)
    assert "ivr.yaml:" in str(caught.value)


def test_the_line_of_a_mistake(tmp_path):
    with pytest.raises(ConfigError, match=r"ivr\.yaml:15: wellness\.campaigns\[2\]\.max_concurrent"):
        load(tmp_path, """
wellness:
  campaigns:
    - {name: a, days: [tue], hours: ["10:00-17:00"]}
    - name: b
      days: [fri]
      hours: ["10:00-17:00"]
      max_concurrent: -1
""")


def test_without_acd_queues_any_queue_name_goes(tmp_path):
    (c,) = load(tmp_path, "wellness: {campaigns: [{name: a, days: [tue], hours: ['10:00-17:00'],"
                          " queue: care}]}\n", extra="").campaigns
    assert (c.queue, c.priority) == ("care", "elderly")


def test_the_readme_sample_loads(tmp_path):
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Wellness calls", 1)[1]
    sample = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (c,) = load(tmp_path, sample).campaigns
    assert (c.name, c.attempts_per_day, c.max_concurrent, c.failed_days_to_visit) \
        == ("seniors", 3, 2, 3)
    assert c.surge is not None and (c.surge.pause_over, c.surge.resume_under) == (120.0, 60.0)
    assert not c.hours.is_open(seoul(2026, 5, 8, 11, 0))        # its own holiday, a Friday
    assert c.hours.is_open(seoul(2026, 5, 12, 11, 0))           # the Tuesday after
