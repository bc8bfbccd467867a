"""Errors of the feature layer. Each names the field (column, option or value) that is wrong."""

from __future__ import annotations


class TransactionLogError(ValueError):
    """The transaction log, or a request about it, cannot be used as given.

    `field` names the column, option or value at fault so that a CLI can print it and a service
    can return it in a 4xx body.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
