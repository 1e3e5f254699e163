"""The one place where errors become exit codes.

0 success; 2 the user must act (:class:`~warehouse.errors.UserInputError`: a bad file, option
or setting, or a step to run first; the message says what to do); 1 anything else (the tool or
an upstream failed); 130 interrupted.
"""

from __future__ import annotations

from warehouse.errors import AitokensError, UserInputError

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def exit_code_for(exc: AitokensError) -> int:
    """2 when the user can fix it, 1 when we or an upstream failed."""
    return EXIT_BAD_INPUT if isinstance(exc, UserInputError) else EXIT_FAILURE
