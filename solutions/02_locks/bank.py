"""Topic 02: locks. A bank account that many threads can use at once."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class InsufficientFunds(Exception):
    """A withdrawal asked for more than the balance."""


class BankAccount:
    """An account whose balance never loses an update, however many threads use it.

    Every read and write of the balance happens while holding self._lock.
    """

    def __init__(self, balance: int = 0):
        if balance < 0:
            raise ValueError(f"opening balance must not be negative, got {balance}")
        self._balance = balance
        self._lock = threading.RLock()  # reentrant: deposit_all holds it while calling deposit

    @property
    def balance(self) -> int:
        with self._lock:
            return self._balance

    def deposit(self, amount: int) -> None:
        """Add amount (> 0) to the balance."""
        _check_positive(amount)
        with self._lock:
            self._balance = self._balance + amount

    def withdraw(self, amount: int) -> None:
        """Take amount (> 0) from the balance; raises `InsufficientFunds` when `amount > balance`
        and leaves the balance as it was."""
        _check_positive(amount)
        with self._lock:
            if amount > self._balance:
                raise InsufficientFunds(f"cannot withdraw {amount}, the balance is {self._balance}")
            self._balance = self._balance - amount

    def deposit_all(self, amounts: Iterable[int]) -> None:
        """Deposit every amount by calling `self.deposit`, all at once: no other thread ever
        sees a balance with only some of the amounts added."""
        amounts = list(amounts)
        for amount in amounts:
            _check_positive(amount)
        with self._lock:
            for amount in amounts:
                self.deposit(amount)


def _check_positive(amount: int) -> None:
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
