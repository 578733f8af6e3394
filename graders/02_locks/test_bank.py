"""Graders for topic 02: bank.py."""

import threading

import pytest

from conclab.testing import EventLog, Job, call, expect, raises, run_threads, shown, start


def test_concurrent_deposits_lose_no_update(bank):
    account = bank.BankAccount()

    def depositor(i):
        for _ in range(300):
            account.deposit(1)

    run_threads(8, depositor, within=6, what="depositor")
    expect(
        account.balance == 2400,
        f"8 threads each deposited 1, 300 times: the balance should be 2400, but it is {account.balance}.\n"
        "Updates were lost: `self._balance = self._balance + amount` reads, adds and writes, and another "
        "thread can run in between. Hold the account's lock around the whole update.",
    )


def test_concurrent_deposits_and_withdrawals_lose_no_update(bank):
    # Withdrawals of 2000 and deposits of 1: however many of each are lost, the losses cannot
    # cancel out (all 1200 deposits together are less than one withdrawal).
    account = bank.BankAccount(2_400_000)

    def worker(i):
        for _ in range(300):
            if i % 2:
                account.deposit(1)
            else:
                account.withdraw(2000)

    run_threads(8, worker, within=6, what="worker")
    expect(
        account.balance == 1200,
        "Starting from 2400000, 4 threads each deposited 1 and 4 threads each withdrew 2000, 300 times each: "
        f"the balance should be 1200, but it is {account.balance}. Updates were lost: both deposit and "
        "withdraw must hold the lock around their read-modify-write.",
    )


# The race window (between the check and the update) is a few opcodes wide: switch often.
@pytest.mark.chaos(rate=0.25)
def test_concurrent_withdrawals_never_overdraw(bank):
    overdrawn = []
    for _ in range(100):
        account = bank.BankAccount(100)
        start_together = threading.Barrier(4)
        outcomes = EventLog()

        def withdraw(i):
            start_together.wait(5)
            try:
                account.withdraw(60)
                outcomes.add("ok")
            except bank.InsufficientFunds:
                outcomes.add("refused")

        run_threads(4, withdraw, what="withdraw(60)")
        if outcomes.count("ok") != 1 or account.balance != 40:
            overdrawn.append((outcomes.count("ok"), account.balance))
    expect(
        not overdrawn,
        "4 threads each tried to withdraw 60 from a balance of 100 at the same moment: exactly one should "
        "succeed and the others get InsufficientFunds, leaving 40. "
        f"In {len(overdrawn)} of 100 tries it went wrong (successes, final balance): {overdrawn[:5]}.\n"
        "Check the balance and subtract inside the same `with self._lock:` block; otherwise two threads can "
        "both pass the check before either subtracts.",
    )


def test_negative_opening_balance_is_refused(bank):
    with raises(ValueError, "BankAccount(-1) should raise ValueError (no negative opening balance)"):
        bank.BankAccount(-1)
    expect(bank.BankAccount().balance == 0, "BankAccount() should start with a balance of 0.")


@pytest.mark.parametrize("amount", [0, -5])
def test_non_positive_amounts_are_refused_and_change_nothing(bank, amount):
    account = bank.BankAccount(50)
    for what, action in [
        ("deposit", lambda: account.deposit(amount)),
        ("withdraw", lambda: account.withdraw(amount)),
        ("deposit_all", lambda: account.deposit_all([10, amount, 10])),
    ]:
        job = Job(action, what=f"{what}({amount})")
        job.finished()
        expect(
            isinstance(job.error, ValueError),
            f"{what} with amount {amount} should raise ValueError, but it "
            f"{'raised ' + shown(job.error) if job.error else 'did not raise'}.",
        )
        expect(
            account.balance == 50,
            f"After the refused {what}({amount}) the balance should still be 50, "
            f"but it is {account.balance}. Check every amount before changing anything.",
        )


def test_deposit_all_is_atomic_and_uses_deposit(bank):
    class Spied(bank.BankAccount):
        def deposit(self, amount):
            calls.add(amount)
            return super().deposit(amount)

    calls = EventLog()
    account = Spied()
    call(account.deposit_all, [7], what="deposit_all([7])")  # a Lock instead of an RLock hangs here
    expect(
        calls.events == [7],
        f"deposit_all must deposit each amount by calling self.deposit; calls seen: {calls.events}.",
    )
    expect(account.balance == 7, f"deposit_all([7]) should leave 7, the balance is {account.balance}.")

    partial = EventLog()
    writer = start(lambda: [account.deposit_all([1] * 10) for _ in range(60)], what="deposit_all, 60 times")

    def observer(i):
        while writer.running:
            seen = account.balance
            if (seen - 7) % 10:
                partial.add(seen)

    run_threads(3, observer, within=6)
    writer.result()
    expect(
        account.balance == 607,
        f"60 calls of deposit_all([1] * 10) should add 600; the balance is {account.balance - 7} more than before.",
    )
    expect(
        not partial.events,
        "While one thread called deposit_all([1] * 10) over and over, other threads read the balance and saw "
        f"{len(partial)} partial totals, e.g. {sorted(set(partial.events))[:5]}. deposit_all must hold the lock for "
        "the whole loop, so nobody sees only some of the amounts added.",
    )


def test_concurrent_deposit_all_and_deposits_add_up(bank):
    account = bank.BankAccount()

    def worker(i):
        for _ in range(40):
            if i % 2:
                account.deposit_all([1, 2, 3, 4])
            else:
                account.deposit(10)

    run_threads(6, worker, within=6)
    expect(
        account.balance == 6 * 40 * 10,
        f"6 threads each added 10, 40 times: the balance should be 2400, but it is {account.balance}.",
    )
