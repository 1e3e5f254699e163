"""The one error root of aitokens, and the warehouse's own errors.

Every error the library raises on purpose derives from :class:`AitokensError`; those the user
can fix (a bad file, a bad option, a step to run first) also derive from
:class:`UserInputError`. Only the CLI turns them into ``Error: ...`` lines; the exit code of
every error is decided in one place, :attr:`AitokensError.exit_code`: 2 for a
:class:`UserInputError`, 1 for any other :class:`AitokensError`.

The root lives here because ``warehouse`` is the one room every other room may import
(``analysis`` imports nothing else of ours; see docs/ARCHITECTURE.md), and this module imports
nothing, so depending on it costs no DuckDB import.
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


class WarehouseError(AitokensError):
    """Base class of every error the warehouse raises on purpose."""


class InputError(WarehouseError, UserInputError):
    """The user's input (a file, a query, an argument) is invalid; nothing was written."""


class WarehouseMissingError(InputError):
    """A read-only command was pointed at a warehouse file that does not exist yet."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the DuckDB file lock and did not release it in time."""


class ReadOnlyViolationError(InputError):
    """A statement that would write was sent through a read-only entry point."""


class ConflictingDuplicatesError(InputError):
    """A batch holds the same key twice with different values, so neither row can be trusted."""
