"""The warehouse's own errors (the error root is :mod:`warehouse.error_root`).

The root's names are re-exported here so ``from warehouse.errors import UserInputError`` keeps
working for the rooms that raise warehouse errors too; a room that needs only the root imports
:mod:`warehouse.error_root`.
"""

from __future__ import annotations

from warehouse.error_root import EXIT_BAD_INPUT, EXIT_FAILURE, AitokensError, UserInputError


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


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "AitokensError",
    "ConflictingDuplicatesError",
    "InputError",
    "ReadOnlyViolationError",
    "UserInputError",
    "WarehouseError",
    "WarehouseLockedError",
    "WarehouseMissingError",
]
