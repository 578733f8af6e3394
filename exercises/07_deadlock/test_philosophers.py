"""Public tests for topic 07. Run them with:  pytest exercises/07_deadlock

The forks and account locks here are instrumented: a philosopher that picks up its first
fork keeps it a moment before reaching for the second, so a program that can deadlock
does deadlock, and the test shows the circle of threads waiting for each other.
"""

from conclab.testing import EventLog, LockTable, expect, run_threads


def test_dine(philosophers):
    table = LockTable(first_hold=0.05)
    forks = [table.lock(f"fork {i}") for i in range(5)]
    meals = EventLog()
    table.run(philosophers.dine, forks, 3, meals.add, what="dine(5 forks, meals=3)", within=8)
    expect(sorted(meals.events) == sorted(list(range(5)) * 3), f"Each philosopher should eat 3 times: {meals.events}.")


class Account:
    def __init__(self, table, id, balance):
        self.id, self.balance, self.lock = id, balance, table.lock(f"the lock of account {id}")


def test_transfer_both_ways(philosophers):
    table = LockTable(first_hold=0.05)
    a, b = Account(table, 1, 100), Account(table, 2, 100)

    def both_ways():
        run_threads(2, lambda i: philosophers.transfer(a, b, 10) if i else philosophers.transfer(b, a, 30), within=8,
                    what="transfer")

    table.run(both_ways, what="transfer(a, b, 10) and transfer(b, a, 30) at the same time", within=9)
    expect((a.balance, b.balance) == (120, 80), f"The balances should be 120 and 80, they are {a.balance} and {b.balance}.")


def test_transfer_refuses_overdraft(philosophers):
    table = LockTable()
    a, b = Account(table, 1, 10), Account(table, 2, 0)
    try:
        philosophers.transfer(a, b, 11)
    except ValueError:
        expect((a.balance, b.balance) == (10, 0), "A refused transfer must change nothing.")
        return
    expect(False, "transfer(a, b, 11) from a balance of 10 should raise ValueError.")
