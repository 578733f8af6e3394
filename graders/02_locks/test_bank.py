"""Graders for topic 02: bank.py."""

import threading

import pytest

from conclab.testing import BLOCK, EventLog, Job, call, expect, raises, run_threads, shown, start, wait_until


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


def test_balance_is_read_under_the_lock(bank):
    # deposit_all([5, 5]) is held back halfway, inside its second call of self.deposit (the
    # first 5 added): while it holds the lock there, a deposit and a read from other threads
    # must both wait for it.
    halfway, may_go = threading.Event(), threading.Event()
    inner_calls = EventLog()

    class HeldHalfway(bank.BankAccount):
        def deposit(self, amount):
            if threading.current_thread() in depositor:
                inner_calls.add(amount)
                if len(inner_calls) == 2:
                    halfway.set()
                    may_go.wait(5)
            return super().deposit(amount)

    def deposit_all():
        depositor.append(threading.current_thread())
        return account.deposit_all([5, 5])

    depositor: list[threading.Thread] = []
    account = HeldHalfway(100)
    depositing = start(deposit_all, what="deposit_all([5, 5])")
    try:
        wait_until(lambda: halfway.is_set() or not depositing.running, what="deposit_all([5, 5]) calling deposit")
        expect(
            halfway.is_set(),
            f"deposit_all([5, 5]) should call self.deposit once for each amount; it called it {len(inner_calls)} "
            f"time(s) and {'raised ' + shown(depositing.error) if depositing.error else 'returned'}.",
        )
        other = start(account.deposit, 1, what="deposit(1) from another thread")
        expect(
            not other.wait(BLOCK),
            "While deposit_all([5, 5]) was halfway (the first 5 added, the second not yet), another thread's "
            "deposit(1) went through at once. deposit_all must hold the account's lock for its whole loop, and "
            "deposit must take the same lock, so that nobody gets in between.",
        )
        reading = start(lambda: account.balance, what="reading balance from another thread")
        expect(
            not reading.wait(BLOCK),
            "While deposit_all([5, 5]) held the lock halfway (another thread's deposit(1) had to wait for it), "
            f"reading balance from a third thread returned {shown(reading.value)} at once: a total that only "
            "some of the amounts are in. The balance property must read under the same lock.",
        )
    finally:
        may_go.set()
    depositing.result()
    other.result()
    seen = reading.result()
    expect(seen in (110, 111), f"Once deposit_all([5, 5]) was done, the read of balance gave {shown(seen)}.")
    expect(account.balance == 111, f"100 + 5 + 5 + 1 should be 111, the balance is {shown(account.balance)}.")


def test_withdraw_more_than_the_balance_is_refused_and_changes_nothing(bank):
    expect(
        isinstance(bank.InsufficientFunds, type) and issubclass(bank.InsufficientFunds, Exception),
        "InsufficientFunds should be an exception class: class InsufficientFunds(Exception).",
    )
    account = bank.BankAccount(50)
    with raises(bank.InsufficientFunds, "withdraw(51) from a balance of 50 should raise InsufficientFunds"):
        call(account.withdraw, 51)
    expect(
        account.balance == 50,
        f"After the refused withdraw(51) the balance should still be 50, but it is {shown(account.balance)}.",
    )
    job = Job(account.withdraw, (50,), what="withdraw(50) from a balance of 50")
    job.finished()
    expect(
        job.error is None,
        f"withdraw(50) from a balance of 50 takes the whole balance, which is allowed (only an amount larger "
        f"than the balance is refused), but it raised {shown(job.error)}.",
    )
    expect(account.balance == 0, f"After withdraw(50) from 50 the balance should be 0, it is {account.balance}.")
    with raises(bank.InsufficientFunds, "withdraw(1) from a balance of 0 should raise InsufficientFunds"):
        call(account.withdraw, 1)
    expect(
        account.balance == 0, f"After the refused withdraw(1) the balance should still be 0, it is {account.balance}."
    )

    # The same while other threads use the account: a refused withdrawal changes nothing.
    busy = bank.BankAccount(0)
    accepted = EventLog()

    def worker(i):
        for _ in range(200):
            if i % 2:
                busy.deposit(1)
                continue
            try:
                busy.withdraw(1_000_000)
                accepted.add(i)
            except bank.InsufficientFunds:
                pass

    run_threads(6, worker, within=6, what="worker")
    expect(
        not accepted.events and busy.balance == 600,
        "3 threads each deposited 1, 200 times, while 3 others each tried withdraw(1000000) 200 times, which "
        f"must always be refused: {len(accepted)} withdrawals went through and the balance ended at {busy.balance} "
        "instead of 600. Check and update the balance under the account's lock.",
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
        f"{len(partial)} partial totals, e.g. {sorted(set(partial.events))[:5]}: they read it in the middle of a "
        "deposit_all. deposit_all must hold the lock for its whole loop, and the balance property must read under "
        "the same lock, so that nobody sees only some of the amounts added.",
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
