"""Topic 07: deadlock. Dining philosophers and bank transfers that cannot deadlock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def dine(forks: Sequence[Any], meals: int, eat: Callable[[int], None]) -> None:
    """One thread per philosopher.  Philosopher i eats `meals` times, each time holding
    forks[i] and forks[(i + 1) % n] while calling eat(i).  Returns when all are done.
    """
    n = len(forks)

    def philosopher(i: int) -> None:
        # TODO: this deadlocks when every philosopher has picked up the left fork and
        #       waits for the right one. Break the circle.
        left, right = i, (i + 1) % n
        for _ in range(meals):
            with forks[left]:
                with forks[right]:
                    eat(i)

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def transfer(src: Any, dst: Any, amount: int) -> None:
    """Move `amount` from src to dst while holding both accounts' locks.  ValueError, and
    nothing changes, if amount <= 0 or src has less than amount.
    """
    # TODO: ValueError if amount <= 0, or if src.balance < amount (checked under the locks).
    # TODO: a transfer from a to b and one from b to a at the same time deadlock here:
    #       take the two locks in an order that does not depend on the direction.
    with src.lock:
        with dst.lock:
            src.balance -= amount
            dst.balance += amount
