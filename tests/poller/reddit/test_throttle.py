"""The throttle spaces requests per key and obeys holds, measured on a fake clock (no real waits)."""

from __future__ import annotations

from services.poller.producer.throttle import Throttle


class FakeClock:
    """Time moves only when the throttle sleeps, so every wait it asks for is visible."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_one_request_per_interval_per_key() -> None:
    clock = FakeClock()
    throttle = Throttle(1.0, clock=clock, sleep=clock.sleep)
    await throttle.wait("python")
    await throttle.wait("rust")
    await throttle.wait("python")
    await throttle.wait("python")
    assert clock.sleeps == [1.0, 1.0]


async def test_time_already_spent_counts_towards_the_interval() -> None:
    clock = FakeClock()
    throttle = Throttle(1.0, clock=clock, sleep=clock.sleep)
    await throttle.wait("python")
    clock.now += 0.75
    await throttle.wait("python")
    assert clock.sleeps == [0.25]


async def test_hold_pauses_every_key() -> None:
    clock = FakeClock()
    throttle = Throttle(1.0, clock=clock, sleep=clock.sleep)
    throttle.hold(30.0)
    await throttle.wait("python")
    await throttle.wait("rust")
    assert clock.sleeps == [30.0]


async def test_memory_stays_bounded() -> None:
    clock = FakeClock()
    throttle = Throttle(1.0, clock=clock, sleep=clock.sleep, max_keys=3)
    for name in ["a", "b", "c", "d", "e"]:
        await throttle.wait(name)
    assert len(throttle._next_slot) == 3
