"""The tracker's scheduler: due order, one thread per key, no wake lost while a step runs."""

from __future__ import annotations

import threading
import time
from collections import Counter

from sectigo_svc.domain.scheduler import Key, Scheduler

A: Key = ("owner", "a")
B: Key = ("owner", "b")


def test_keys_run_when_due_in_due_order() -> None:
    ran: list[Key] = []
    done = threading.Event()

    def step(key: Key) -> None:
        ran.append(key)
        if len(ran) == 2:
            done.set()

    scheduler = Scheduler(step, workers=1, name="t")
    scheduler.wake(A, delay=0.2)
    scheduler.wake(B, delay=0.05)
    scheduler.start()
    assert done.wait(2)
    scheduler.stop(1)
    assert ran == [B, A]


def test_an_earlier_wake_wins_and_a_later_one_does_not_delay() -> None:
    started = time.monotonic()
    ran = threading.Event()
    scheduler = Scheduler(lambda key: ran.set(), workers=1, name="t")
    scheduler.wake(A, delay=5)
    scheduler.wake(A, delay=0)
    scheduler.wake(A, delay=10)
    scheduler.start()
    assert ran.wait(2)
    scheduler.stop(1)
    assert time.monotonic() - started < 2


def test_a_wake_during_a_step_runs_the_key_again_right_after() -> None:
    inside = threading.Event()
    release = threading.Event()
    runs: list[float] = []

    def step(key: Key) -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            inside.set()
            release.wait(2)

    scheduler = Scheduler(step, workers=2, name="t")
    scheduler.start()
    scheduler.wake(A)
    assert inside.wait(2)
    scheduler.wake(A)
    release.set()
    deadline = time.monotonic() + 2
    while len(runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop(1)
    assert len(runs) == 2, "the wake that came during the step was lost"


def test_a_key_never_runs_on_two_threads_at_once() -> None:
    active: Counter[Key] = Counter()
    overlaps: list[Key] = []
    lock = threading.Lock()
    total = Counter[Key]()

    def step(key: Key) -> float | None:
        with lock:
            active[key] += 1
            if active[key] > 1:
                overlaps.append(key)
            total[key] += 1
        time.sleep(0.002)
        with lock:
            active[key] -= 1
        return 0.0 if total[key] < 30 else None

    scheduler = Scheduler(step, workers=4, name="t")
    scheduler.start()
    for _ in range(20):
        scheduler.wake(A)
        scheduler.wake(B)
    deadline = time.monotonic() + 5
    while min(total[A], total[B]) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop(1)
    assert overlaps == []
    assert total[A] >= 30 and total[B] >= 30


def test_stop_waits_for_the_step_under_way() -> None:
    finished = threading.Event()
    entered = threading.Event()

    def step(key: Key) -> None:
        entered.set()
        time.sleep(0.2)
        finished.set()

    scheduler = Scheduler(step, workers=1, name="t")
    scheduler.start()
    scheduler.wake(A)
    assert entered.wait(2)
    scheduler.stop(5)
    assert finished.is_set()
