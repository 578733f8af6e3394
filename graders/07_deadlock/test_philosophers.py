"""Graders for topic 07: philosophers.py.

The forks and account locks are the graders' own TrackedLocks.  A thread that holds a lock
and goes to wait for another one keeps it a moment first (kit/locks.py), so that an order of
locking that can deadlock does deadlock, every time; the deadlock is then reported as the
circle of threads and locks it is made of.  A thread that tries its second lock with a
timeout is kept like that on its first try only, so that backing off is never slowed.
"""

import random
import threading

import pytest

from conclab.testing import EventLog, LockTable, call, expect, no_new_threads, raises, run_threads


class Meals:
    """eat(i) for the philosophers: checks both forks are held, and counts."""

    def __init__(self, forks):
        self.forks = forks
        self.log = EventLog()
        self.problems = EventLog()

    def eat(self, i):
        me = threading.current_thread()
        n = len(self.forks)
        for k in (i, (i + 1) % n):
            if self.forks[k].owner is not me:
                holder = self.forks[k].owner.name if self.forks[k].owner else "nobody"
                self.problems.add(f"philosopher {i} ate without holding fork {k} (held by {holder})")
        self.log.add((i, me.name))

    def check(self, meals):
        n = len(self.forks)
        expect(
            not self.problems.events,
            "Philosopher i must hold forks[i] and forks[(i + 1) % n] while eating: "
            + "; ".join(sorted(set(self.problems.events))[:3])
            + ".",
        )
        counts = [sum(1 for j, _ in self.log.events if j == i) for i in range(n)]
        expect(
            counts == [meals] * n, f"Each of the {n} philosophers should eat {meals} times; they ate {counts} times."
        )
        threads = {i: {name for j, name in self.log.events if j == i} for i in range(n)}
        expect(
            all(len(names) == 1 for names in threads.values()) and len(set().union(*threads.values())) == n,
            "Each philosopher should be one thread of its own that eats all its meals.",
        )


def dinner(philosophers, first_hold):
    table = LockTable(first_hold=first_hold)
    forks = [table.lock(f"fork {i}") for i in range(philosophers)]
    return table, forks, Meals(forks)


@pytest.mark.parametrize("n", [5, 2])
def test_dine_does_not_deadlock_when_every_philosopher_takes_a_fork_at_once(philosophers, n):
    table, forks, meals = dinner(n, first_hold=0.1)
    table.run(philosophers.dine, forks, 2, meals.eat, what=f"dine({n} forks, meals=2)", within=8)
    meals.check(2)


def test_every_philosopher_eats_every_meal_holding_both_forks(philosophers):
    table, forks, meals = dinner(7, first_hold=0.01)
    with no_new_threads("dine(7 forks, meals=8)"):  # it returns when all are done
        table.run(philosophers.dine, forks, 8, meals.eat, what="dine(7 forks, meals=8)", within=8)
    meals.check(8)


# ------------------------------------------------------------------ transfer


class Account:
    """An account as transfer() gets it: .id, .lock and .balance.  Each change of the balance
    is recorded with the locks its thread held then."""

    def __init__(self, table, id, balance):
        self.id = id
        self.lock = table.lock(f"the lock of account {id}")
        self._table = table
        self._balance = balance
        self.writes = EventLog()  # (thread name, the locks it held) for every change

    @property
    def balance(self):
        return self._balance

    @balance.setter
    def balance(self, value):
        me = threading.current_thread()
        self.writes.add((me.name, frozenset(self._table.held_by(me))))
        self._balance = value

    def unlocked_writes(self):
        return [name for name, held in self.writes.events if self.lock not in held]


def test_transfers_in_opposite_directions_do_not_deadlock(philosophers):
    table = LockTable(first_hold=0.1)
    a, b = Account(table, 1, 1000), Account(table, 2, 1000)

    def both_ways():
        run_threads(
            6,
            lambda i: [philosophers.transfer(a, b, 10) if i % 2 else philosophers.transfer(b, a, 10) for _ in range(3)],
            within=8,
            what="transfer",
        )

    table.run(both_ways, what="3 threads moving money from a to b and 3 from b to a", within=9)
    expect(
        a.balance == 1000 and b.balance == 1000,
        f"Equal transfers both ways should leave both accounts at 1000; they are {a.balance} and {b.balance}.",
    )


def test_transfer_moves_money_only_when_it_may(philosophers):
    table = LockTable()
    a, b = Account(table, 7, 100), Account(table, 3, 50)
    call(philosophers.transfer, a, b, 30)
    expect(
        (a.balance, b.balance) == (70, 80),
        f"transfer(a, b, 30) from 100 and 50 should give 70 and 80, not {a.balance} and {b.balance}.",
    )
    for amount, why in [(0, "an amount of 0"), (-5, "a negative amount"), (71, "more than the balance (70)")]:
        with raises(ValueError, f"transfer(a, b, {amount}) with {why} should raise ValueError"):
            call(philosophers.transfer, a, b, amount, what=f"transfer(a, b, {amount})")
        expect(
            (a.balance, b.balance) == (70, 80),
            f"A transfer refused for {why} must change nothing; the balances became {a.balance} and {b.balance}.",
        )
    expect(not a.lock.locked() and not b.lock.locked(), "A refused transfer must release both locks.")


def test_a_transfer_is_atomic(philosophers):
    table = LockTable(first_hold=0.05)
    a, b = Account(table, 1, 500), Account(table, 2, 500)
    seen = EventLog()

    def audit():
        while any(mover.is_alive() for mover in movers):
            with a.lock:
                if b.lock.acquire(timeout=0.05):  # an auditor that never holds the transfers up for long
                    try:
                        seen.add(a.balance + b.balance)
                    finally:
                        b.lock.release()
            threading.Event().wait(0.01)  # let the transfers have the locks too

    def moves(src, dst, amount):
        for _ in range(6):
            philosophers.transfer(src, dst, amount)

    movers = [  # in opposite directions, at the same time
        threading.Thread(target=moves, args=(a, b, 5), name="mover 1"),
        threading.Thread(target=moves, args=(b, a, 3), name="mover 2"),
    ]

    def both():
        for mover in movers:
            mover.start()
        audit()
        for mover in movers:
            mover.join()

    table.run(both, what="transfers while an auditor checks the total", within=9)
    wrong = sorted({total for total in seen.events if total != 1000})
    expect(
        not wrong,
        f"An auditor holding both locks saw the total at {wrong[:3]} instead of 1000: money was "
        "missing in the middle of a transfer. Hold both locks for the whole transfer.",
    )
    halfway = [
        (account.id, name)
        for account in (a, b)
        for name, held in account.writes.events
        if name.startswith("mover") and not {a.lock, b.lock} <= held
    ]
    expect(
        not halfway,
        f"transfer() changed a balance while it did not hold both accounts' locks ({len(halfway)} of "
        f"{len(a.writes) + len(b.writes)} changes, the first of account {halfway[0][0] if halfway else ''}): "
        "another thread could see the money missing in the middle of the transfer. Take both locks, then "
        "change both balances, then let both go.",
    )
    expect(
        (a.balance, b.balance) == (488, 512),
        f"After the transfers the balances should be 488 and 512, they are {a.balance} and {b.balance}.",
    )


def test_two_transfers_from_one_account_cannot_overdraw_it(philosophers):
    table = LockTable(first_hold=0.1)
    a, b, c = Account(table, 1, 100), Account(table, 2, 0), Account(table, 3, 0)
    together = threading.Barrier(2)
    refused = EventLog()

    def send(i):
        together.wait(5)
        try:
            philosophers.transfer(a, (b, c)[i], 80)
        except ValueError:
            refused.add(i)

    table.run(
        lambda: run_threads(2, send, within=8, what="transfer"),
        what="transfer(a, b, 80) and transfer(a, c, 80) at the same time, from a balance of 100",
        within=9,
    )
    expect(
        len(refused) == 1 and a.balance == 20 and b.balance + c.balance == 80,
        "Two threads each tried to move 80 out of an account holding 100 at the same time: one should succeed "
        f"and the other get ValueError. Instead {2 - len(refused)} succeeded and the balance became {a.balance}. "
        "Check the balance after taking the locks, not before.",
    )


def test_many_transfers_between_many_accounts(philosophers):
    table = LockTable(first_hold=0.005)
    accounts = [Account(table, id, 100) for id in (5, 2, 9, 4, 7)]
    refused = EventLog()

    def worker(i):
        rng = random.Random(i)
        for _ in range(25):
            src, dst = rng.sample(accounts, 2)
            try:
                philosophers.transfer(src, dst, rng.randint(1, 60))
            except ValueError:
                refused.add(i)

    table.run(
        lambda: run_threads(6, worker, within=8, what="transfer"), what="6 threads making 150 transfers", within=9
    )
    balances = [account.balance for account in accounts]
    unlocked = [name for account in accounts for name in account.unlocked_writes()]
    expect(
        not unlocked,
        f"A balance was changed {len(unlocked)} times by a thread that did not hold that account's lock.",
    )
    expect(sum(balances) == 500, f"Money appeared or vanished: the balances add up to {sum(balances)}, not 500.")
    expect(min(balances) >= 0, f"An account went below zero ({balances}): check the balance after taking the locks.")
