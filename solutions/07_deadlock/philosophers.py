"""Topic 07: deadlock. Dining philosophers and bank transfers that cannot deadlock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def dine(forks: Sequence[Any], meals: int, eat: Callable[[int], None]) -> None:
    """One thread per philosopher.  Philosopher i eats `meals` times, each time holding
    forks[i] and forks[(i + 1) % n] while calling eat(i).  Returns when all are done.

    Every philosopher picks up the lower-numbered of its two forks first: with one
    global order there can be no circle of philosophers waiting for each other."""
    n = len(forks)

    def philosopher(i: int) -> None:
        first, second = sorted((i, (i + 1) % n))
        for _ in range(meals):
            with forks[first]:
                with forks[second]:
                    eat(i)

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def transfer(src: Any, dst: Any, amount: int) -> None:
    """Move `amount` from src to dst while holding both accounts' locks.  ValueError, and
    nothing changes, if amount <= 0 or src has less than amount.

    The locks are taken in the order of the accounts' ids, whichever account is the
    source, so two transfers in opposite directions take them in the same order."""
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
    first, second = sorted((src, dst), key=lambda account: account.id)
    with first.lock:
        with second.lock:
            if src.balance < amount:
                raise ValueError(f"balance {src.balance} is less than {amount}")
            src.balance -= amount
            dst.balance += amount
