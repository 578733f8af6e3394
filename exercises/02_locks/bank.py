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
        # TODO: a negative opening balance is a ValueError.
        self._balance = balance
        # TODO: create the lock that guards self._balance (which kind? see deposit_all).

    @property
    def balance(self) -> int:
        # TODO: read the balance while holding the lock.
        return self._balance

    def deposit(self, amount: int) -> None:
        """Add amount (> 0) to the balance."""
        # TODO: ValueError if amount <= 0.
        # TODO: this read-modify-write is a race: hold the lock around it.
        self._balance = self._balance + amount

    def withdraw(self, amount: int) -> None:
        """Take amount (> 0) from the balance; raises `InsufficientFunds` when `amount > balance`
        and leaves the balance as it was."""
        # TODO: ValueError if amount <= 0.
        # TODO: the check and the update must happen under the same lock.
        if amount > self._balance:
            raise InsufficientFunds(f"cannot withdraw {amount}, the balance is {self._balance}")
        self._balance = self._balance - amount

    def deposit_all(self, amounts: Iterable[int]) -> None:
        """Deposit every amount by calling `self.deposit`, all at once: no other thread ever
        sees a balance with only some of the amounts added."""
        amounts = list(amounts)
        # TODO: ValueError (and nothing deposited) if any amount is <= 0.
        # TODO: hold the lock for the whole loop.
        for amount in amounts:
            self.deposit(amount)


def _check_positive(amount: int) -> None:
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
