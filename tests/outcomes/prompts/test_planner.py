"""Planning maths: local days, waking windows, quiet hours and daylight saving."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from outcomes.prompts import planner
from outcomes.prompts.protocol import Answer, Prompt, Reminder

DAILY = tuple(range(7))


def prompt(key="lonely", *, at=time(9, 0), window=None, days=DAILY, expire=120, reminder=60):
    return Prompt(key=key, label=key, text="How lonely did you feel today? Reply 0-10",
                  weekdays=days, at=None if window else at, window=window,
                  expire_minutes=expire,
                  reminder=Reminder(reminder, "Reminder") if reminder else None,
                  answer=Answer("scale", 0, 10), help="help", feedback=())


def slot(p, day, zone, wake=(time(9, 0), time(20, 0)), pid=1):
    return planner.plan_slot(p, participant_id=pid, day=day, zone=ZoneInfo(zone),
                             wake_start=wake[0], wake_end=wake[1])


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# --- daylight saving: 09:00 local stays 09:00 local, the UTC time moves -------------------------

DST_DAYS = [
    # London: clocks forward 29 March 2026, back 25 October 2026
    ("Europe/London", date(2026, 3, 28), utc(2026, 3, 28, 9)),
    ("Europe/London", date(2026, 3, 29), utc(2026, 3, 29, 8)),
    ("Europe/London", date(2026, 10, 24), utc(2026, 10, 24, 8)),
    ("Europe/London", date(2026, 10, 25), utc(2026, 10, 25, 9)),
    # New York: forward 8 March 2026, back 1 November 2026
    ("America/New_York", date(2026, 3, 7), utc(2026, 3, 7, 14)),
    ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 13)),
    ("America/New_York", date(2026, 10, 31), utc(2026, 10, 31, 13)),
    ("America/New_York", date(2026, 11, 1), utc(2026, 11, 1, 14)),
    # Sydney (southern hemisphere): back 5 April 2026, forward 4 October 2026
    ("Australia/Sydney", date(2026, 4, 4), utc(2026, 4, 3, 22)),
    ("Australia/Sydney", date(2026, 4, 5), utc(2026, 4, 4, 23)),
    ("Australia/Sydney", date(2026, 10, 3), utc(2026, 10, 2, 23)),
    ("Australia/Sydney", date(2026, 10, 4), utc(2026, 10, 3, 22)),
]


@pytest.mark.parametrize(("zone", "day", "expected"), DST_DAYS)
def test_a_fixed_time_follows_the_clocks_on_dst_days(zone, day, expected):
    planned = slot(prompt(), day, zone)
    assert planned.planned_at == expected
    assert planned.planned_at.astimezone(ZoneInfo(zone)).time() == time(9, 0)
    assert planned.expires_at == expected + timedelta(hours=2)
    assert planned.reminder_at == expected + timedelta(hours=1)


GAPS_AND_REPEATS = [
    # a local time that does not exist moves forward by the gap
    ("Europe/London", date(2026, 3, 29), time(1, 30), utc(2026, 3, 29, 1, 30)),
    ("America/New_York", date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7, 30)),
    ("Australia/Sydney", date(2026, 10, 4), time(2, 30), utc(2026, 10, 3, 16, 30)),
    # a local time that happens twice is taken the first time
    ("Europe/London", date(2026, 10, 25), time(1, 30), utc(2026, 10, 25, 0, 30)),
    ("America/New_York", date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),
    ("Australia/Sydney", date(2026, 4, 5), time(2, 30), utc(2026, 4, 4, 15, 30)),
]


@pytest.mark.parametrize(("zone", "day", "moment", "expected"), GAPS_AND_REPEATS)
def test_missing_and_repeated_local_times_are_handled_deliberately(zone, day, moment, expected):
    assert planner.to_utc(day, moment, ZoneInfo(zone)) == expected


def test_a_shifted_time_outside_the_allowed_window_is_dropped():
    # a zone whose clocks jump inside the day: 08:00-21:00 checked again after conversion
    zone = ZoneInfo("Europe/London")
    instant = planner.to_utc(date(2026, 3, 29), time(1, 30), zone)
    assert not planner._inside(instant, zone, date(2026, 3, 29), (time(8, 0), time(21, 0)))


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Australia/Sydney",
                                  "Asia/Kolkata", "Pacific/Auckland"])
def test_nothing_is_ever_planned_outside_quiet_hours_or_the_waking_window(zone):
    rng = random.Random(zone)
    tz = ZoneInfo(zone)
    prompts = [prompt("fixed_early", at=time(8, 0)), prompt("fixed_late", at=time(21, 0)),
               prompt("random", window=(time(8, 0), time(21, 0))),
               prompt("evening", window=(time(17, 0), time(20, 30)), reminder=45)]
    day = date(2026, 1, 1)
    for _ in range(366):
        wake = (time(rng.randint(5, 11), rng.choice([0, 30])),
                time(rng.randint(17, 23), rng.choice([0, 30])))
        for p in prompts:
            planned = slot(p, day, zone, wake, pid=rng.randint(1, 10_000))
            for moment in (planned.planned_at, planned.reminder_at):
                if moment is None:
                    continue
                local = moment.astimezone(tz)
                assert local.date() == day
                assert max(time(8, 0), wake[0]) <= local.time() <= min(time(21, 0), wake[1])
        day += timedelta(days=1)


# --- waking windows ------------------------------------------------------------------------------

def test_a_fixed_time_before_waking_moves_to_the_start_of_their_day():
    planned = slot(prompt(at=time(9, 0)), date(2026, 12, 1), "Europe/London",
                   (time(10, 30), time(22, 0)))
    assert planned.planned_at == utc(2026, 12, 1, 10, 30)


def test_a_waking_window_is_cut_to_eight_to_nine():
    planned = slot(prompt(at=time(8, 0)), date(2026, 12, 1), "Europe/London",
                   (time(6, 0), time(23, 0)))
    assert planned.planned_at == utc(2026, 12, 1, 8, 0)


def test_a_random_window_is_intersected_with_the_waking_window():
    times = {slot(prompt(window=(time(17, 0), time(20, 0))), date(2026, 12, 1) +
                  timedelta(days=n), "Europe/London", (time(9, 0), time(18, 0))).planned_at.time()
             for n in range(60)}
    assert all(time(17, 0) <= t < time(18, 0) for t in times)
    assert len(times) > 10


def test_a_random_window_outside_the_waking_window_takes_its_nearest_edge():
    planned = slot(prompt(window=(time(17, 0), time(20, 0))), date(2026, 12, 1),
                   "Europe/London", (time(9, 0), time(12, 0)))
    assert planned.planned_at == utc(2026, 12, 1, 12, 0)


@pytest.mark.parametrize("wake", [(time(22, 0), time(6, 0)), (time(21, 0), time(23, 0)),
                                  (time(5, 0), time(8, 0))])
def test_no_waking_hours_inside_eight_to_nine_means_no_prompt(wake):
    assert slot(prompt(), date(2026, 12, 1), "Europe/London", wake) is None


def test_a_reminder_that_would_fall_after_their_day_ends_is_dropped():
    planned = slot(prompt(at=time(19, 30), reminder=60), date(2026, 12, 1), "Europe/London",
                   (time(9, 0), time(20, 0)))
    assert planned.planned_at == utc(2026, 12, 1, 19, 30)
    assert planned.reminder_at is None


# --- random times, days ---------------------------------------------------------------------------

def test_a_random_time_is_the_same_every_time_it_is_planned():
    p = prompt("talked", window=(time(17, 0), time(20, 0)))
    first = slot(p, date(2026, 12, 1), "Europe/London", pid=42)
    again = slot(p, date(2026, 12, 1), "Europe/London", pid=42)
    assert first == again
    others = {slot(p, date(2026, 12, 1), "Europe/London", pid=pid).planned_at
              for pid in range(1, 40)}
    days = {slot(p, date(2026, 12, 1) + timedelta(days=n), "Europe/London", pid=42)
            .planned_at.time() for n in range(30)}
    assert len(others) > 20 and len(days) > 15


def test_days_pick_the_weekdays():
    weekly = prompt(days=(6,))  # Sundays
    planned = [date(2026, 11, 23) + timedelta(days=n) for n in range(14)
               if slot(weekly, date(2026, 11, 23) + timedelta(days=n), "Europe/London")]
    assert planned == [date(2026, 11, 29), date(2026, 12, 6)]
    weekdays = prompt(days=(0, 1, 2, 3, 4))
    assert slot(weekdays, date(2026, 12, 5), "Europe/London") is None  # a Saturday
    assert slot(weekdays, date(2026, 12, 4), "Europe/London") is not None


def test_a_slot_is_due_from_the_look_ahead_until_the_grace_ends():
    planned = slot(prompt(), date(2026, 12, 1), "Europe/London")
    at = planned.planned_at
    assert not planner.is_due(planned, at - planner.LOOKAHEAD - timedelta(minutes=1))
    assert planner.is_due(planned, at - planner.LOOKAHEAD)
    assert planner.is_due(planned, at + planner.SEND_GRACE)
    assert not planner.is_due(planned, at + planner.SEND_GRACE + timedelta(minutes=1))


def test_a_slot_is_never_due_after_the_participants_day_ends():
    planned = slot(prompt(at=time(19, 50)), date(2026, 12, 1), "Europe/London")
    assert not planner.is_due(planned, utc(2026, 12, 1, 20, 5))
