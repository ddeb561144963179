"""Error-message help shared by every room (it imports nothing of nnlab's)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(value: object, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest allowed name, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
