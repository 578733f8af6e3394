"""Public tests for topic 02. Run them with:  pytest exercises/02_locks

The hidden graders hammer the account from many threads with forced thread switches,
so a race that hides here will show there: make every update hold the lock.
"""

from conclab.testing import call, expect, raises, run_threads


def test_deposit_and_withdraw(bank):
    account = bank.BankAccount(10)
    account.deposit(5)
    account.withdraw(3)
    expect(account.balance == 12, f"10 + 5 - 3 should be 12, the balance is {account.balance}.")


def test_withdraw_too_much(bank):
    account = bank.BankAccount(10)
    with raises(bank.InsufficientFunds, "withdraw(11) from a balance of 10 should raise InsufficientFunds"):
        account.withdraw(11)
    expect(account.balance == 10, "A refused withdrawal must leave the balance unchanged.")


def test_bad_amounts(bank):
    with raises(ValueError, "BankAccount(-1) should raise ValueError (no negative opening balance)"):
        bank.BankAccount(-1)
    with raises(ValueError, "deposit(0) should raise ValueError (amounts must be positive)"):
        bank.BankAccount().deposit(0)


def test_deposit_all(bank):
    account = bank.BankAccount()
    call(account.deposit_all, [1, 2, 3])
    expect(account.balance == 6, f"deposit_all([1, 2, 3]) should leave 6, the balance is {account.balance}.")


def test_many_threads_depositing(bank):
    account = bank.BankAccount()
    run_threads(4, lambda i: [account.deposit(1) for _ in range(250)], within=20)
    expect(
        account.balance == 1000,
        f"4 threads x 250 deposits of 1 should give 1000, got {account.balance}: updates were lost. "
        "`self._balance = self._balance + amount` reads, adds and writes back, and another thread can run in "
        "between: hold the account's lock around the whole update.",
    )
