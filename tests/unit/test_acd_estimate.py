"""The expected wait of a caller in line, and the range the caller hears."""

from __future__ import annotations

import pytest

from ivr.acd.estimate import (
    RANGES_MINUTES, AppQueueAverage, Ewma, WaitEstimator, announce_range, nth_free,
)

NOW = 1000.0


def estimator(handle: float = 200.0, **kw) -> WaitEstimator:
    return WaitEstimator(prior_handle=handle, **kw)


# -- app_queue's reference ---------------------------------------------------------------------

def test_app_queue_starts_at_zero():
    assert AppQueueAverage().estimate() == 0


def test_app_queue_moves_a_quarter_of_the_way_to_each_answered_wait():
    aq = AppQueueAverage()
    aq.record_answered(100)
    assert aq.holdtime == 25
    aq.record_answered(100)
    assert aq.holdtime == pytest.approx((3 * 25 + 100) / 4)
    aq.record_answered(0)
    assert aq.holdtime == pytest.approx((3 * 43.75 + 0) / 4)


def test_app_queue_says_the_same_to_every_place_in_line():
    aq = AppQueueAverage()
    for wait in (40, 80, 120):
        aq.record_answered(wait)
    assert aq.estimate(1) == aq.estimate(50) == aq.holdtime


# -- the wait at a place in line ---------------------------------------------------------------

def test_the_first_in_line_with_a_free_agent_waits_nothing():
    assert estimator().estimate(1, [0.0], NOW) == pytest.approx(0)


def test_the_first_in_line_waits_for_the_agent_who_frees_up_first():
    assert estimator().estimate(1, [120.0, 45.0, 300.0], NOW) == pytest.approx(45)


def test_the_wait_grows_with_the_place_in_line():
    est = estimator()
    waits = [est.estimate(p, [30.0, 90.0, 150.0], NOW) for p in range(1, 12)]
    assert all(a < b for a, b in zip(waits, waits[1:]))


def test_one_agent_serves_the_line_one_handle_time_after_another():
    est = estimator(handle=200)
    assert [est.estimate(p, [50.0], NOW) for p in (1, 2, 3)] == pytest.approx([50, 250, 450])


def test_more_agents_shorten_the_wait():
    est = estimator()
    few = est.estimate(10, [60.0, 120.0], NOW)
    many = est.estimate(10, [60.0, 120.0, 60.0, 120.0], NOW)
    assert many < few


def test_a_long_line_goes_at_agents_per_handle_time():
    est = estimator(handle=240)
    # 8 agents all free now: caller 81 is in the eleventh round of frees, 10 handle times on
    assert est.estimate(81, [0.0] * 8, NOW) == pytest.approx(10 * 240)


def test_a_wrap_up_ending_soon_counts_as_a_free_agent_soon():
    assert estimator().estimate(1, [7.0, 180.0], NOW) == pytest.approx(7)


def test_abandonment_of_callers_ahead_shortens_the_wait():
    patient, giving_up = estimator(), estimator()
    for _ in range(20):
        patient.record_answered(60)
        giving_up.record_answered(60)
        giving_up.record_abandoned(60)
    busy = [100.0, 150.0]
    assert giving_up.abandon_rate == pytest.approx(0.5, abs=0.05)
    assert giving_up.estimate(20, busy, NOW) < patient.estimate(20, busy, NOW)


def test_abandonment_does_not_change_the_wait_of_the_first_in_line():
    est = estimator()
    for _ in range(10):
        est.record_abandoned(30)
    assert est.estimate(1, [80.0], NOW) == pytest.approx(80)


def test_a_place_between_two_frees_is_between_their_times():
    est = estimator(handle=100)
    for _ in range(50):
        est.record_answered(10)
        est.record_abandoned(10)
    # p_eff = 1 + 2 * (1 - ~0.5) = ~2: between the 1st (0) and 3rd (200) frees of one agent
    assert 50 < est.estimate(3, [0.0], NOW) < 150


def test_the_prior_handle_time_is_used_until_a_call_is_handled():
    est = estimator(handle=180)
    assert est.mean_handle == 180
    assert est.estimate(2, [0.0], NOW) == pytest.approx(180)
    est.record_handle(300)
    assert est.mean_handle == pytest.approx(300)
    assert est.estimate(2, [0.0], NOW) == pytest.approx(300)


def test_recent_handle_times_weigh_more_than_old_ones():
    est = estimator(handle_half_life=10)
    for _ in range(30):
        est.record_handle(100)
    for _ in range(10):
        est.record_handle(300)
    assert 190 < est.mean_handle < 300


def test_an_agent_on_a_call_is_expected_free_after_the_rest_of_the_mean():
    est = estimator(handle=240, floor=20)
    assert est.busy_remaining(100) == pytest.approx(140)


def test_an_agent_on_a_call_longer_than_the_mean_still_needs_the_floor():
    est = estimator(handle=240, floor=20)
    assert est.busy_remaining(400) == pytest.approx(20)


def test_no_agent_no_estimate():
    with pytest.raises(ValueError, match="nobody to serve"):
        estimator().estimate(1, [], NOW)


def test_places_start_at_one():
    with pytest.raises(ValueError, match="1-based"):
        estimator().estimate(0, [0.0], NOW)


# -- the n-th agent free -----------------------------------------------------------------------

def test_nth_free_matches_drawing_every_free_one_by_one():
    import heapq

    def slow(n, remaining, handle):
        heap = list(remaining)
        heapq.heapify(heap)
        for _ in range(n - 1):
            heapq.heappush(heap, heapq.heappop(heap) + handle)
        return heap[0]

    cases = [[0.0], [5.0, 500.0, 12.0], [900.0, 0.0, 0.0, 30.0], [10.0, 20.0, 30.0, 40.0]]
    for remaining in cases:
        for n in range(1, 30):
            assert nth_free(n, remaining, 100.0) == pytest.approx(slow(n, remaining, 100.0)), (remaining, n)


# -- what the caller hears ---------------------------------------------------------------------

def test_announce_range_picks_the_smallest_range_with_a_margin():
    assert announce_range(0) == 1
    assert announce_range(40) == 1            # 50 s
    assert announce_range(50) == 2            # 62.5 s: no longer "less than 1 minute"
    assert announce_range(150) == 5           # 187.5 s
    assert announce_range(500) == 15          # 625 s
    assert announce_range(1440) == 30         # exactly 30 minutes with the margin


def test_announce_range_says_more_than_thirty_minutes_beyond():
    assert announce_range(1441) == 0
    assert announce_range(4 * 3600) == 0


@pytest.mark.parametrize("seconds", [0, 1, 30, 47, 48, 59, 61, 95, 143, 144, 170, 239, 241, 479,
                                     481, 719, 900, 959, 1199, 1200, 1439])
def test_announce_range_keeps_the_margin_and_is_the_smallest_that_does(seconds):
    minutes = announce_range(seconds)
    assert minutes in RANGES_MINUTES
    assert minutes * 60 >= seconds * 1.25
    smaller = [m for m in RANGES_MINUTES if m < minutes]
    assert not smaller or smaller[-1] * 60 < seconds * 1.25


def test_announce_range_never_below_the_estimate_over_every_second_of_half_an_hour():
    for seconds in range(0, 1441):
        minutes = announce_range(seconds)
        assert minutes != 0 and minutes * 60 >= seconds


# -- the moving average ------------------------------------------------------------------------

def test_ewma_halves_an_old_samples_weight_every_half_life():
    avg = Ewma(half_life=1, prior=0.0)
    avg.add(100)
    avg.add(0)
    assert avg.value == pytest.approx(100 * 0.5 / 1.5)


def test_ewma_is_the_prior_until_a_sample_arrives():
    avg = Ewma(half_life=5, prior=42.0)
    assert avg.value == 42 and avg.count == 0
