"""The expected wait of a caller in line, and the range the caller hears."""

from __future__ import annotations

import pytest

import heapq
import itertools
import math

from ivr.acd.estimate import (
    RANGES_MINUTES, AppQueueAverage, DecayingRate, Ewma, RecentDurations, WaitEstimator,
    announce_range, nth_free, wait_for,
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
    assert all(a < b for a, b in itertools.pairwise(waits))


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
    assert giving_up.estimate(20, busy, NOW) < patient.estimate(20, busy, NOW)


def test_the_more_callers_give_up_the_shorter_the_wait_behind_them():
    waits = []
    for gave_up in (0, 5, 10, 20):
        est = estimator()
        for i in range(20):
            (est.record_abandoned if i < gave_up else est.record_answered)(120)
        waits.append(est.estimate(30, [0.0, 60.0, 120.0], NOW))
    assert waits == sorted(waits, reverse=True) and waits[0] > waits[-1]


def test_abandonment_does_not_change_the_wait_of_the_first_in_line():
    est = estimator()
    for _ in range(10):
        est.record_abandoned(30)
    assert est.estimate(1, [80.0], NOW) == pytest.approx(80)


def test_the_abandonment_hazard_is_callers_giving_up_per_second_in_line():
    est = estimator()
    est.record_answered(100)
    est.record_abandoned(300)
    est.record_answered(200)
    # one caller gave up in 600 s spent in line (recent samples weigh a little more)
    assert est.abandon_hazard == pytest.approx(1 / 600, rel=0.02)
    assert est.abandon_rate == pytest.approx(1 / 3, rel=0.02)


def test_no_abandonment_before_anyone_left_the_line():
    est = estimator()
    assert est.abandon_hazard == 0 and est.abandon_rate == 0


def test_a_caller_behind_one_who_is_likely_to_give_up_waits_between_the_two_frees():
    # one agent free now and again at 100 s; one caller ahead who gives up at 1/100 per second:
    # by 0 s nobody has given up, so the caller ahead takes the first agent
    assert wait_for(1, [0.0], 100.0, hazard=0.01) == pytest.approx(100)
    # with the agent busy for 100 s, the caller ahead is still there with probability e^-1
    assert wait_for(1, [100.0], 100.0, hazard=0.01) == pytest.approx(100 + math.exp(-1) * 100)


# -- callers of a higher priority arriving meanwhile ---------------------------------------

def elderly_every(seconds: float, est: WaitEstimator, until: float = NOW) -> None:
    t = until - 3600
    while t <= until:
        est.record_arrival(0, t)
        t += seconds


def test_callers_of_a_higher_priority_arriving_meanwhile_lengthen_a_normal_callers_wait():
    est = estimator(handle=200)
    elderly_every(120, est)                      # about one elderly caller every 2 minutes
    busy = [50.0, 100.0, 150.0]
    normal = est.estimate(5, busy, NOW, rank=2)
    assert normal > est.estimate(5, busy, NOW, rank=None)
    assert est.estimate(5, busy, NOW, rank=0) == est.estimate(5, busy, NOW, rank=None)


def test_callers_of_the_same_or_a_lower_priority_do_not_go_ahead():
    est = estimator()
    for t in range(0, 1000, 10):
        est.record_arrival(2, float(t))
    assert est.arrival_rate(1000, above_rank=2) == 0
    assert est.arrival_rate(1000, above_rank=3) > 0


def test_when_higher_priorities_alone_keep_every_agent_busy_the_estimate_is_the_horizon():
    est = estimator(handle=200, horizon=3600)
    elderly_every(20, est)                       # 3 a minute for an hour: the usual rate
    assert est.usual_arrival_rate(NOW, above_rank=2) == pytest.approx(1 / 20, rel=0.05)
    assert est.estimate(3, [10.0, 20.0], NOW, rank=2) == 3600    # two agents take 0.6 a minute


def surge_of_elderly(est: WaitEstimator) -> None:
    """An elderly caller every 5 minutes for three hours, then every 20 s for half an hour."""
    t = NOW - 3 * 3600 - 1800
    while t <= NOW:
        est.record_arrival(0, t)
        t += 300 if t < NOW - 1800 else 20


def test_a_surge_of_higher_priorities_fades_so_a_normal_caller_is_served_in_the_end():
    fading, lasting = estimator(handle=200), estimator(handle=200, fade=math.inf)
    for est in (fading, lasting):
        surge_of_elderly(est)
    assert fading.arrival_rate(NOW, above_rank=2) > 2 * fading.usual_arrival_rate(NOW, above_rank=2)
    # six agents take 1.8 a minute: fewer than come now (2.3), more than usually come (0.7)
    busy = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert lasting.estimate(10, busy, NOW, rank=2) == lasting.horizon
    wait = fading.estimate(10, busy, NOW, rank=2)
    assert fading.estimate(10, busy, NOW) + 600 < wait < fading.horizon * 0.75


def test_a_surge_that_fades_at_once_adds_its_surplus_times_the_fade_callers_ahead():
    est = estimator(handle=200, fade=60)         # a surge is over in a minute or so
    surge_of_elderly(est)
    usual = est.usual_arrival_rate(NOW, above_rank=2)
    extra = (est.arrival_rate(NOW, above_rank=2) - usual) * 60    # the integral of the surplus
    busy = [10.0, 20.0, 30.0, 40.0]
    at_usual = wait_for(9 + extra, busy, 200, inflow=usual)
    assert est.estimate(10, busy, NOW, rank=2) == pytest.approx(at_usual, rel=0.02)
    assert at_usual > wait_for(9, busy, 200, inflow=usual) + 50


def test_a_lull_in_higher_priorities_fades_back_up_to_the_usual_rate():
    fading, lasting = estimator(handle=200), estimator(handle=200, fade=math.inf)
    for est in (fading, lasting):
        elderly_every(60, est, until=NOW - 1800)   # one a minute, then none for half an hour
    busy = [50.0, 100.0, 150.0]
    assert fading.arrival_rate(NOW, above_rank=2) < fading.usual_arrival_rate(NOW, above_rank=2)
    assert fading.estimate(8, busy, NOW, rank=2) > lasting.estimate(8, busy, NOW, rank=2)


def test_the_usual_rate_soon_after_the_start_is_about_the_recent_one():
    est = estimator()
    for t in range(0, 1800, 30):                 # half an hour, one caller every 30 s
        est.record_arrival(1, float(t))
    assert est.usual_arrival_rate(1800) == pytest.approx(1 / 30, rel=0.1)
    assert est.usual_arrival_rate(1800) == pytest.approx(est.arrival_rate(1800), rel=0.1)


def test_a_fade_must_be_positive():
    with pytest.raises(ValueError, match="fade"):
        estimator(fade=0)


def test_an_estimate_is_never_beyond_the_horizon():
    est = estimator(handle=300, horizon=1800)
    assert est.estimate(500, [0.0], NOW) == 1800


def test_an_inflow_without_a_horizon_is_refused():
    with pytest.raises(ValueError, match="finite horizon"):
        wait_for(3, [0.0], 100.0, inflow=0.1, horizon=math.inf)


def test_arrival_rate_follows_recent_arrivals():
    rate = DecayingRate(half_life=600)
    for t in range(0, 3600, 10):
        rate.add(float(t))
    assert rate.rate(3600) == pytest.approx(0.1, rel=0.05)
    assert rate.rate(3600 + 1200) == pytest.approx(0.1 / 4, rel=0.05)   # two half-lives later


def test_a_first_arrival_alone_is_not_read_as_a_flood():
    rate = DecayingRate(half_life=600)
    rate.add(100.0)
    assert rate.rate(100.0) <= 2 / (600 / math.log(2))


# -- the ring and the rest of a call -------------------------------------------------------

def test_the_time_an_agents_phone_rings_is_added():
    est = estimator()
    est.record_ring(4)
    assert est.mean_ring == 4
    assert est.estimate(1, [0.0], NOW) == pytest.approx(4)


def test_an_agent_is_busy_for_the_ring_before_each_call_too():
    est = estimator(handle=200)
    est.record_ring(5)
    # the third in line: the agent's phone rings 5 s before each of the three calls
    assert est.estimate(3, [0.0], NOW) == pytest.approx(2 * (200 + 5) + 5)


def test_a_long_call_is_expected_to_go_on_longer_than_the_mean_says():
    est = estimator(handle=200, window=100, min_longer=5)
    for seconds in [100] * 10 + [400] * 10:
        est.record_handle(seconds)
    assert est.mean_handle == pytest.approx(250, rel=0.1)
    # 150 s in: it is one of the long ones, 250 s to go (the mean would say 100)
    assert est.busy_remaining(150) == pytest.approx(250)


def test_without_enough_calls_that_long_the_rest_is_the_mean_less_the_call_so_far():
    est = estimator(handle=240, floor=20)
    assert est.busy_remaining(100) == pytest.approx(140)
    assert est.busy_remaining(400) == pytest.approx(20)        # never below the floor


def test_among_many_busy_agents_one_frees_up_sooner_than_each_alone():
    est = estimator(window=200)
    for seconds in range(20, 420, 2):                          # spread 20 .. 418 s
        est.record_handle(float(seconds))
    on_call = [10.0] * 10                                      # ten agents 10 s into a call
    times = est.free_times(on_call, [])
    assert len(times) == 10 and times == sorted(times)
    assert times[0] < est.busy_remaining(10) / 3
    assert times[-1] > est.busy_remaining(10)


def test_free_agents_and_wrap_ups_are_free_when_known():
    est = estimator()
    assert est.free_times([], [0.0, 0.0, 7.0]) == [0.0, 0.0, 7.0]


def test_recent_durations_forget_the_oldest():
    recent = RecentDurations(size=3)
    for seconds in (500.0, 10.0, 20.0, 30.0):
        recent.add(seconds)
    assert len(recent) == 3
    assert recent.rest(0, points=3, at_least=1) == [10, 20, 30]
    assert recent.rest(25, points=1, at_least=2) is None


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


def test_wait_for_steps_whole_rounds_as_one_free_at_a_time_would():
    def slow(ahead, remaining, handle, hazard, inflow):
        heap = list(remaining)
        heapq.heapify(heap)
        a, prev = float(ahead), 0.0
        while True:
            t = heapq.heappop(heap)
            heapq.heappush(heap, t + handle)
            dt = t - prev
            if hazard:
                a = a * math.exp(-hazard * dt) + inflow * (1 - math.exp(-hazard * dt)) / hazard
            else:
                a += inflow * dt
            prev = t
            if a < 1:
                return t + max(a, 0) * (heap[0] - t)
            a -= 1

    for remaining in ([0.0], [30.0, 200.0, 90.0], [0.0] * 6 + [500.0]):
        for ahead in (0, 3, 40, 400, 5000):
            for hazard, inflow in ((0.0, 0.0), (0.001, 0.0), (0.002, 0.005), (0.0, 0.002), (0.01, 0.005)):
                got = wait_for(ahead, remaining, 240.0, hazard=hazard, inflow=inflow, horizon=1e7)
                want = slow(ahead, remaining, 240.0, hazard, inflow)
                assert got == pytest.approx(want, rel=1e-6), (remaining, ahead, hazard, inflow)


def test_wait_for_with_a_fading_inflow_matches_integrating_it_in_small_steps():
    def slow(ahead, remaining, handle, hazard, inflow, surplus, fade):
        heap = list(remaining)
        heapq.heapify(heap)
        a, prev = float(ahead), 0.0
        while True:
            t = heapq.heappop(heap)
            heapq.heappush(heap, t + handle)
            steps = max(1, math.ceil((t - prev) / 0.25))
            h = (t - prev) / steps
            for j in range(steps):              # dA/dt = rate(t) - hazard * A, midpoint rule
                s = prev + (j + 0.5) * h
                mid = a + 0.5 * h * (inflow + surplus * math.exp(-(s - 0.5 * h) / fade) - hazard * a)
                a += h * (inflow + surplus * math.exp(-s / fade) - hazard * mid)
            prev = t
            if a < 1:
                return t + max(a, 0) * (heap[0] - t)
            a -= 1
            if t > 1e5:                          # the line does not move
                return math.inf

    for remaining in ([0.0], [30.0, 200.0, 90.0], [0.0] * 4 + [500.0]):
        for ahead in (0, 3, 40, 150):
            for hazard, inflow, surplus, fade in ((0.002, 0.004, 0.02, 900.0), (0.0, 0.002, 0.01, 600.0),
                                                  (0.001, 0.01, -0.008, 1200.0), (0.002, 0.0, 0.03, 1 / 0.002)):
                got = wait_for(ahead, remaining, 240.0, hazard=hazard, inflow=inflow, surplus=surplus,
                               fade=fade, horizon=1e7)
                want = slow(ahead, remaining, 240.0, hazard, inflow, surplus, fade)
                if want == math.inf:                # more come than one agent takes: never
                    assert got == 1e7, (remaining, ahead, hazard, inflow, surplus)
                else:
                    assert got == pytest.approx(want, rel=2e-3), (remaining, ahead, hazard, inflow, surplus)


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
