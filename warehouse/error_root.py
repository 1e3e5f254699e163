"""The one error root of aitokens: :class:`AitokensError` and :class:`UserInputError`.

Every error the library raises on purpose derives from :class:`AitokensError`; those the user
can fix (a bad file, a bad option, a step to run first) also derive from
:class:`UserInputError`. Only the CLI turns them into ``Error: ...`` lines; the exit code of
every error is decided in one place, :attr:`AitokensError.exit_code`: 2 for a
:class:`UserInputError`, 1 for any other :class:`AitokensError`.

It is a module of its own, apart from the warehouse's errors (:mod:`warehouse.errors`), so that
a room that only needs the root (``analysis``, a CLI option) does not depend on the
warehouse's error types: ``warehouse`` is the lowest room, the one every other room may import
(docs/ARCHITECTURE.md), and this module imports nothing, so depending on it costs no DuckDB
import.
"""

from __future__ import annotations

EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2


class AitokensError(Exception):
    """Root of every error aitokens raises on purpose: the tool or an upstream failed."""

    @property
    def exit_code(self) -> int:
        """2 when the user can fix it (:class:`UserInputError`), 1 when we or an upstream
        failed: the only mapping from errors to exit codes."""
        return EXIT_BAD_INPUT if isinstance(self, UserInputError) else EXIT_FAILURE


class UserInputError(AitokensError):
    """The user must act: fix an input, a setting or a file, or run another step first."""


__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "AitokensError", "UserInputError"]
