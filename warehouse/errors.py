"""Typed errors of the warehouse layer.

The library raises these; only the CLI turns them into ``Error: ...`` lines and exit codes.
``exit_code`` 2 means the user gave bad input or must act first; 1 means the tool failed.
"""

from __future__ import annotations


class WarehouseError(Exception):
    """Base class of every error the warehouse raises on purpose."""

    exit_code = 1


class InputError(WarehouseError):
    """The user's input (a file, a query, an argument) is invalid; nothing was written."""

    exit_code = 2


class WarehouseMissingError(InputError):
    """A read-only command was pointed at a warehouse file that does not exist yet."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the DuckDB file lock and did not release it in time."""


class ReadOnlyViolationError(InputError):
    """A statement that would write was sent through a read-only entry point."""


class ConflictingDuplicatesError(InputError):
    """A batch holds the same key twice with different values, so neither row can be trusted."""
