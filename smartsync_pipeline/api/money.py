"""Money in JSON: always an exact decimal string with two places ("1234.50"), never a float.

The one serializer of amounts for every JSON smartsync writes: the HTTP API's response models, the
CLI's ``--json`` output and the digest's JSON (``to_json``). Services and the digest return
``decimal.Decimal`` amounts (see ARCHITECTURE.md, "Exact money"); here they become strings, exactly.
A binary float, or an amount with a fraction of a cent, is refused instead of rounded: either means
an exact amount was lost upstream, and rounding it here would hide that.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Annotated, Any

import pandas as pd
from pydantic import Field

CENT = Decimal("0.01")
MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])

# The JSON schema of an amount: a string of digits with exactly two decimals.
Money = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["1234.50"], description="exact amount, 2 decimals")]


def money_text(value: Any) -> str:
    """``value`` (Decimal, int or a numeric string) as an exact 2-decimal string.

    Floats are refused (TypeError), and so is an amount with digits below the cent (ValueError):
    nothing here rounds."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise TypeError(f"not an exact amount of money: {value!r}")
    if isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not an amount of money: {value!r}") from None
    elif hasattr(value, "item"):  # numpy integers
        return money_text(value.item())
    else:
        raise TypeError(f"not an amount of money: {value!r}")
    if not number.is_finite():
        raise ValueError(f"not an amount of money: {value!r}")
    try:
        text = format(number.quantize(CENT, context=_EXACT), "f")
    except (Inexact, InvalidOperation):
        raise ValueError(f"not a whole number of cents: {value!r}") from None
    return "0.00" if text == "-0.00" else text


def money_or_none(value: Any) -> str | None:
    """``money_text``, with a missing value (None, pandas' NA) as None."""
    if value is None or _is_na(value):
        return None
    return money_text(value)


def _is_na(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    return value is pd.NA or value is pd.NaT


def json_value(value: Any) -> Any:
    """``value`` with every Decimal as its exact text, dates as ISO text, containers walked.

    Decimals are written as they are (``format(d, "f")``): the services' amounts always carry exactly
    two places, and a non-money Decimal such as runway weeks ("12.3") keeps its own. Floats pass
    through only if they are not money; a service never returns money as a float."""
    if value is None or _is_na(value):
        return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not an exact number: {value!r}")
        return format(value, "f")
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return json_value(value.item())
    return value


def to_json(value: Any, **dumps_options: Any) -> str:
    """JSON text of a result (digest, bills, any dict of Decimals, dates and plain values)."""
    return json.dumps(json_value(value), **dumps_options)
