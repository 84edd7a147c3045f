"""Money in JSON: always an exact decimal string with two places ("1234.50"), never a float.

Services return Decimal (or, while they still sum floats, float); this is the one function every
amount goes through on its way into a response, whatever type it arrives as.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field

CENT = Decimal("0.01")
MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"

# The JSON schema of an amount: a string of digits with exactly two decimals.
Money = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["1234.50"], description="exact amount, 2 decimals")]


def money_text(value: Any) -> str:
    """``value`` (Decimal, int, float or a numeric string) as an exact 2-decimal string.

    Floats go through their shortest round-trip text (``repr``), so 0.1 + 0.2 becomes "0.30", not
    the binary expansion; halves round away from zero, as accountants expect."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not an amount of money: {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not an amount of money: {value!r}")
        number = Decimal(repr(value))
    elif isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not an amount of money: {value!r}") from None
    elif hasattr(value, "item"):  # numpy scalars from pandas
        return money_text(value.item())
    else:
        raise TypeError(f"not an amount of money: {value!r}")
    if not number.is_finite():
        raise ValueError(f"not an amount of money: {value!r}")
    text = str(number.quantize(CENT, rounding=ROUND_HALF_UP))
    return "0.00" if text == "-0.00" else text


def money_or_none(value: Any) -> str | None:
    """``money_text``, with missing values (None, NaN) as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, Decimal):
        return money_or_none(value.item())
    return money_text(value)
