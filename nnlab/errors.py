"""What went wrong, said once for every room (a leaf: it imports nothing of nnlab's).

`InputError` is what the user got wrong: a field, an argument, a file or a folder. Its message is
one line naming what was wrong and what is allowed; the CLI prints it and exits 2. It is a
ValueError, so Python callers that catch ValueError keep working. Anything else that escapes is a
bug of nnlab's: the CLI says so in one line, writes the traceback to a file it names, and exits 1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad input (a field, an argument, a file, a folder): the message names it, in one line."""


def did_you_mean(value: object, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest allowed name, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
