"""The one exception type the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad usage or bad input: the message is meant for the user, not a traceback.

    ``param`` names the library parameter at fault (``"batch_size"``); the CLI alone knows which
    flag sets it and prefixes the message with that flag.
    """

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def refuse(given: dict, allowed: set[str], what: str) -> None:
    """Options that do not apply to what was asked for are refused, not ignored."""
    extra = sorted(set(given) - allowed)
    if extra:
        raise UserError(f"{', '.join(extra)} do(es) not apply to {what}", param=extra[0])


# Past this an integer no longer fits the C types the libraries below hand it to (a 64-bit size).
BIGGEST = 2**63 - 1


def check_numbers(options: dict) -> None:
    """Refuse what click's number types let through: nan and inf, and integers past 64 bits."""
    import math

    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{value} is not a finite number", param=name)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > BIGGEST:
            raise UserError(f"{value} is too large", param=name)
