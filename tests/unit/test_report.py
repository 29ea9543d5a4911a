"""The journey report, counted by hand on a small day of calls, and its edge cases."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.analytics.report import (NO_PRIORITY, ReportBuilder, WaitStats, build_report, csv_tables,
                                  flow_order, format_report, split_range)
from ivr.call import CallRecord

SEOUL = ZoneInfo("Asia/Seoul")
DAY = dt.date(2026, 11, 2)
SINCE = dt.datetime(2026, 11, 2, tzinfo=SEOUL)
UNTIL = dt.datetime(2026, 11, 3, tzinfo=SEOUL)

# The sample flow's paths (node, how the call left it).
INFO = [("start", "next"), ("choose_language", "key"), ("welcome", "next"), ("main_menu", "key"),
        ("certificates_menu", "key"), ("certificates_issue_info", "next"), ("after_info", "key"),
        ("goodbye", "end")]
AGENT = [("start", "next"), ("choose_language", "key"), ("welcome", "next"), ("main_menu", "key"),
         ("agent", "queue")]
HANGUP = [("start", "next"), ("choose_language", "key"), ("welcome", "next"), ("main_menu", "hangup")]
BYPASS = [("bypass", "queue")]
NO_CHOICE = [("start", "next"), ("choose_language", "key"), ("welcome", "next"),
             ("main_menu", "timeout"), ("agent_no_choice", "queue")]
WRONG_KEY = [("start", "next"), ("choose_language", "key"), ("welcome", "next"),
             ("main_menu", "invalid"), ("agent_no_choice", "queue")]
RETRIES = [("start", "next"), ("choose_language", "key"), ("welcome", "next"), ("main_menu", "key"),
           ("certificates_menu", "key"), ("certificates_fax_info", "next"), ("after_info", "timeout"),
           ("goodbye", "end")]

_ids = itertools.count()


def call(when: dt.datetime, number: str | None, path, outcome: str | None, *, flow: str = "main",
         waited: float | None = None, priority: str | None = None, reason: str | None = None,
         unfinished: bool = False) -> CallRecord:
    nodes = [n for n, _ in path]
    exits = [e for _, e in path]
    if unfinished:
        exits = exits[:-1]          # still at its last node
    queued = any(e == "queue" for e in exits)
    return CallRecord(call_id=f"c{next(_ids):03d}", caller=number or "", dialled="15771000",
                      started_at=when.astimezone(dt.timezone.utc), flow=flow, nodes=nodes, exits=exits,
                      outcome=outcome, priority=priority, reason=reason, number=number,
                      queue="general" if queued else None, waited=waited)


def at(day: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hh, mm, tzinfo=SEOUL)


A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P = (f"+8210000000{i:02d}" for i in range(16))  # noqa: E741 - the callers of the table below

# Local times (Asia/Seoul); the range is 2 November.
DAY_OF_CALLS = [
    # the day before: seen for repeats, not counted
    call(at(1, 8), B, INFO, "completed"),
    call(at(1, 10), A, INFO, "completed"),
    # the range: 20 calls
    call(at(2, 2), A, INFO, "completed"),                    # c01 repeat (A 16 h before); recontact: c09
    call(at(2, 8), B, INFO, "completed"),                    # c02 B exactly 24 h before: no repeat;
    #                                                          B again exactly 24 h later: no recontact
    call(at(2, 9), C, AGENT, "agent_connected", waited=30),                       # c03
    call(at(2, 9, 10), D, HANGUP, "caller_hangup"),                                # c04
    call(at(2, 9, 20), None, INFO, "completed"),             # c05 withheld: contained, not followed
    call(at(2, 9, 30), E, BYPASS, "agent_connected", waited=10, priority="elderly",
         reason="bypass: elderly"),                                                # c06
    call(at(2, 9, 40), F, NO_CHOICE, "agent_connected", waited=50,
         reason="no choice made in the menu"),                                     # c07
    call(at(2, 10), G, AGENT, "abandoned", waited=120),                            # c08
    call(at(2, 14), A, AGENT, "agent_connected", waited=40),  # c09 repeat (c01, 12 h)
    call(at(2, 14, 30), H, INFO, "completed"),               # c10 recontact: c11
    call(at(2, 15), H, INFO, "completed"),                   # c11 repeat (c10); recontact 23:59 later
    call(at(2, 15, 30), I, RETRIES, "retries_exhausted"),                          # c12
    call(at(2, 16), J, BYPASS, "agent_connected", waited=20, priority="repeat",
         reason="bypass: repeat"),                                                 # c13
    call(at(2, 16, 10), K, BYPASS, "callback_booked", waited=200, priority="elderly",
         reason="bypass: elderly"),                                                # c14
    call(at(2, 17), L, WRONG_KEY, "agent_connected", waited=60),                   # c15
    call(at(2, 18), M, INFO, "completed"),                   # c16 M calls another flow later: contained
    call(at(2, 20), D, AGENT, "agent_connected", waited=90),  # c17 repeat (c04)
    call(at(2, 21), E, INFO, "completed"),                   # c20 repeat (c06)
    call(at(2, 23), O, HANGUP, None, unfinished=True),       # c19 in progress, at main_menu
    call(at(2, 23, 59), N, HANGUP, "caller_hangup"),                               # c18
    # the day after: followed for recontacts, not counted
    call(at(3, 0), P, INFO, "completed"),                    # starts at `until`: not in the range
    call(at(3, 8), B, INFO, "completed"),                    # exactly 24 h after c02
    call(at(3, 10), M, INFO, "completed", flow="other"),     # another flow: skipped
    call(at(3, 14, 59), H, INFO, "completed"),               # 23 h 59 min after c11: a recontact
]


def day_report(order=(), top=10, batch=4):
    builder = ReportBuilder("main", SINCE, UNTIL, SEOUL, order=order, top=top)
    for i in range(0, len(DAY_OF_CALLS), batch):
        builder.add(DAY_OF_CALLS[i:i + batch])
    return builder.report()


def test_the_headline_figures_counted_by_hand():
    r = day_report()
    assert r.calls == 20
    # completed without a queue: c01 c02 c05 c10 c11 c16 c20
    assert r.contained == 7 and r.containment == pytest.approx(7 / 20)
    # called again within 24 h: c01 (c09), c10 (c11), c11 (14:59 next day); not c02 (exactly
    # 24 h), not c05 (withheld), not c16 (M's next call is of another flow), not c20
    assert r.recontacted == 3
    assert r.contained_no_recontact == 4 and r.containment_corrected == pytest.approx(4 / 20)
    # repeats: c01 (A the day before, 16 h), c09 (A), c11 (H), c17 (D), c20 (E); c02 is B
    # exactly 24 h after its last call: not a repeat
    assert r.with_number == 19 and r.repeats == 5
    assert r.repeat_rate == pytest.approx(5 / 19)
    assert r.fully_followed
    assert dict(r.outcomes) == {"completed": 7, "agent_connected": 7, "caller_hangup": 2,
                                "abandoned": 1, "callback_booked": 1, "in progress": 1,
                                "retries_exhausted": 1}
    assert list(r.outcomes)[:2] == ["agent_connected", "completed"]     # most first, then by name
    assert dict(r.bypasses) == {"elderly": 2, "repeat": 1}


def test_the_funnel_counted_by_hand():
    r = day_report()
    got = {s.node: (s.reached, s.hangup, s.timeout, s.invalid, s.queued, s.agent) for s in r.funnel}
    assert got == {
        # node                   reached hang-up timeout invalid queued agent
        "bypass":                  (3,    0,     0,     0,     3,    2),   # c06 c13 agent, c14 callback
        "start":                   (17,   0,     0,     0,     0,    0),   # 20 less 3 bypasses
        "choose_language":         (17,   0,     0,     0,     0,    0),
        "welcome":                 (17,   0,     0,     0,     0,    0),
        # hang-up c04 c18, timeout c07, invalid c15; c19 is still there (no exit yet)
        "main_menu":               (17,   2,     1,     1,     0,    0),
        "certificates_menu":       (8,    0,     0,     0,     0,    0),   # 7 INFO + c12
        "certificates_issue_info": (7,    0,     0,     0,     0,    0),
        "certificates_fax_info":   (1,    0,     0,     0,     0,    0),
        "after_info":              (8,    0,     1,     0,     0,    0),   # c12 ran out of tries
        "goodbye":                 (8,    0,     0,     0,     0,    0),
        "agent":                   (4,    0,     0,     0,     4,    3),   # c08 abandoned
        "agent_no_choice":         (2,    0,     0,     0,     2,    2),   # c07 c15
    }
    # without the flow's order: by reach, then by name
    assert [s.node for s in r.funnel][:4] == ["choose_language", "main_menu", "start", "welcome"]


def test_the_funnel_follows_the_flow_when_given_it():
    from ivr.flow.loader import load_flows
    from ivr.prompts import load_catalogue

    root = Path(__file__).resolve().parents[2]
    flows = load_flows([root / "flows"], load_catalogue(root / "prompts" / "catalog.yaml"))
    order = flow_order(flows["main"], flows)
    assert order[:5] == ["bypass", "start", "welcome", "choose_language", "main_menu"]
    assert "long_term_care/ltc_menu" in order
    assert order.index("long_term_care") < order.index("long_term_care/ltc_menu") < order.index("goodbye")
    r = day_report(order=order)
    assert [s.node for s in r.funnel][:5] == ["bypass", "start", "welcome", "choose_language", "main_menu"]
    assert {s.node for s in r.funnel} <= set(order)


def test_the_top_paths_counted_by_hand():
    r = day_report(top=3)
    assert [(list(p), c) for p, c in r.paths] == [
        ([n for n, _ in INFO], 7),       # c01 c02 c05 c10 c11 c16 c20
        ([n for n, _ in AGENT], 4),      # c03 c08 c09 c17
        ([n for n, _ in BYPASS], 3),     # c06 c13 c14; ties with HANGUP's c04 c18 c19 and
    ]                                    # comes first by name
    assert r.paths_error == 0


def test_the_waits_counted_by_hand():
    r = day_report()
    # no priority: c03 30, c07 50, c08 120, c09 40, c15 60, c17 90 → sorted 30 40 50 60 90 120:
    # mean 390/6 = 65, median (50+60)/2 = 55, p90 at rank 0.9·5 = 4.5: 90 + 0.5·30 = 105
    # elderly: c06 10, c14 200: mean 105, median 105, p90 10 + 0.9·190 = 181; repeat: c13 20
    assert dict(r.wait_by_priority) == {
        NO_PRIORITY: WaitStats(6, 65.0, 55.0, 105.0),
        "elderly": WaitStats(2, 105.0, 105.0, pytest.approx(181.0)),
        "repeat": WaitStats(1, 20.0, 20.0, 20.0),
    }
    # by local hour: 09 c03 30, c06 10, c07 50 (p90 at rank 1.8: 30 + 0.8·20 = 46); 10 c08;
    # 14 c09; 16 c13 20, c14 200 (p90 20 + 0.9·180 = 182); 17 c15; 20 c17
    hours = {h: w for h, w in enumerate(r.wait_by_hour) if w.count}
    assert hours == {9: WaitStats(3, 30.0, 30.0, pytest.approx(46.0)), 10: WaitStats(1, 120.0, 120.0, 120.0),
                     14: WaitStats(1, 40.0, 40.0, 40.0), 16: WaitStats(2, 110.0, 110.0, pytest.approx(182.0)),
                     17: WaitStats(1, 60.0, 60.0, 60.0), 20: WaitStats(1, 90.0, 90.0, 90.0)}
    assert r.wait_by_hour[0] == WaitStats(0, None, None, None)


def test_the_terminal_table_and_the_csv_say_the_same():
    r = day_report()
    text = format_report(r)
    assert "journey report: flow main, 2026-11-02 to 2026-11-02 (Asia/Seoul)" in text
    assert "contained (completed in the IVR)            7   35.0%" in text
    assert "  and no recontact within 24 h              4   20.0%" in text
    assert "repeat contacts (within 24 h)               5   26.3%  of 19 calls with a number" in text
    tables = csv_tables(r)
    assert set(tables) == {"summary.csv", "outcomes.csv", "funnel.csv", "paths.csv", "bypasses.csv",
                           "wait_by_priority.csv", "wait_by_hour.csv"}
    summary = dict(csv.reader(io.StringIO(tables["summary.csv"])))
    assert summary["calls"] == "20" and summary["containment"] == "0.3500"
    assert summary["containment_corrected"] == "0.2000" and summary["repeat_rate"] == "0.2632"
    funnel = list(csv.DictReader(io.StringIO(tables["funnel.csv"])))
    assert {"node": "agent", "reached": "4", "hangup": "0", "timeout": "0", "invalid": "0",
            "queued": "4", "agent": "3"} in funnel
    hours = list(csv.DictReader(io.StringIO(tables["wait_by_hour.csv"])))
    assert len(hours) == 24 and hours[9] == {"hour": "9", "calls": "3", "mean_s": "30.0",
                                             "median_s": "30.0", "p90_s": "46.0"}
    assert hours[0]["mean_s"] == ""


def test_an_empty_range():
    r = ReportBuilder("main", SINCE, UNTIL, SEOUL).report()
    assert (r.calls, r.contained, r.repeats, r.funnel, r.paths) == (0, 0, 0, (), ())
    assert r.containment is None and r.containment_corrected is None and r.repeat_rate is None
    assert "no calls in this range" in format_report(r)
    assert csv_tables(r)["funnel.csv"] == "node,reached,hangup,timeout,invalid,queued,agent\n"


def test_a_flow_with_no_calls_counts_nothing_of_the_others():
    builder = ReportBuilder("long_term_care", SINCE, UNTIL, SEOUL)
    builder.add(DAY_OF_CALLS)
    r = builder.report()
    assert r.calls == 0 and not r.outcomes and not r.wait_by_priority


def test_a_recontact_exactly_24_hours_later_is_not_one_and_a_second_earlier_is():
    first = call(at(2, 12), A, INFO, "completed")
    for later, recontacted in ((dt.timedelta(hours=24), 0), (dt.timedelta(hours=24, seconds=-1), 1)):
        builder = ReportBuilder("main", SINCE, UNTIL, SEOUL)
        builder.add([first, call(at(2, 12) + later, A, AGENT, "agent_connected", waited=5)])
        r = builder.report()
        assert (r.calls, r.contained, r.recontacted) == (1, 1, recontacted)


def test_a_report_for_today_says_how_far_recontacts_were_followed():
    builder = ReportBuilder("main", SINCE, UNTIL, SEOUL)
    builder.add(DAY_OF_CALLS[:10])
    r = builder.report(followed_until=at(2, 11))
    assert not r.fully_followed
    assert "(recontacts seen up to 2026-11-02 11:00 only)" in format_report(r)


def test_records_out_of_time_order_are_refused():
    builder = ReportBuilder("main", SINCE, UNTIL, SEOUL)
    builder.add([call(at(2, 12), A, INFO, "completed")])
    with pytest.raises(ValueError, match="oldest first"):
        builder.add([call(at(2, 11), B, INFO, "completed")])


def test_the_numbers_kept_are_those_of_the_last_24_hours():
    builder = ReportBuilder("main", at(1, 0), at(30, 0), SEOUL)
    # a caller a minute for 29 days, each number once a day: 1,440 numbers
    for day in range(1, 30):
        builder.add(call(at(day, 0) + dt.timedelta(minutes=m), f"+8210{m:08d}", INFO, "completed")
                    for m in range(1440))
        assert builder.numbers_held <= 1441
    r = builder.report()
    assert r.calls == 29 * 1440
    assert r.repeats == 0                 # each number exactly 24 h after its previous call
    assert r.recontacted == 0


def test_many_distinct_paths_are_thinned_and_say_by_how_much():
    builder = ReportBuilder("main", SINCE, UNTIL, SEOUL, top=1, paths_kept=5)
    common = [("start", "next"), ("goodbye", "end")]
    records = []
    for i in range(200):
        when = at(2, 1) + dt.timedelta(seconds=i)
        records.append(call(when, None, common if i % 2 else [(f"node{i}", "end")], "completed"))
    builder.add(records)
    r = builder.report()
    (path, count), = r.paths
    assert path == ("start", "goodbye")
    assert r.paths_error > 0 and count <= 100 <= count + r.paths_error


async def test_build_report_reads_every_batch():
    async def batches():
        for i in range(0, len(DAY_OF_CALLS), 3):
            yield DAY_OF_CALLS[i:i + 3]

    r = await build_report(batches(), ReportBuilder("main", SINCE, UNTIL, SEOUL))
    assert r == day_report()


def test_parts_of_the_range_built_apart_and_merged_give_the_same_report():
    since, until = at(1, 0), UNTIL                   # two days: the 1st and the 2nd
    whole = ReportBuilder("main", since, until, SEOUL)
    whole.add(DAY_OF_CALLS)
    parts = split_range(since, until, 2, SEOUL)
    assert parts == [(at(1, 0), at(2, 0)), (at(2, 0), UNTIL)]
    merged = ReportBuilder("main", since, until, SEOUL)
    for a, b in parts:
        part = ReportBuilder("main", a, b, SEOUL)
        part.add(DAY_OF_CALLS)                       # each part sees the 24 h on both sides
        merged.merge(part.finished())
    assert merged.report() == whole.report()
    assert merged.report().calls == 22


def test_split_range_keeps_whole_days_and_never_more_parts_than_days():
    month = (dt.datetime(2026, 11, 1, tzinfo=SEOUL), dt.datetime(2026, 12, 1, tzinfo=SEOUL))
    parts = split_range(*month, 4, SEOUL)
    assert [b - a for a, b in parts] == [dt.timedelta(days=d) for d in (8, 7, 7, 8)]
    assert parts[0][0] == month[0] and parts[-1][1] == month[1]
    assert all(a.astimezone(SEOUL).time() == dt.time() for a, _ in parts)
    assert split_range(SINCE, UNTIL, 8, SEOUL) == [(SINCE, UNTIL)]
