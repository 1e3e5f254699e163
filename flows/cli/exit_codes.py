"""Exit codes of the `aitokens` command.

0 success; 2 the user must act (a :class:`~warehouse.errors.UserInputError`: a bad file, option
or setting, or a step to run first; the message says what to do); 1 anything else (the tool or
an upstream failed); 130 interrupted. Which error gets 1 or 2 is decided once, by
:attr:`warehouse.errors.AitokensError.exit_code`.
"""

from __future__ import annotations

from warehouse.error_root import EXIT_BAD_INPUT, EXIT_FAILURE, AitokensError

EXIT_OK, EXIT_INTERRUPTED = 0, 130

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "exit_code_for"]


def exit_code_for(exc: AitokensError) -> int:
    """The exit code of an error the library raised on purpose."""
    return exc.exit_code
