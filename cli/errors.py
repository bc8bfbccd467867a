"""Turn expected errors into a one-line message on stderr and exit code 2 (no traceback)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from clv.features.errors import TransactionLogError
from pydantic import ValidationError

USAGE_ERROR = 2


class CliUsageError(Exception):
    """A problem with the user's input that is not about the transaction log itself."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=USAGE_ERROR)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Report bad input as `error: ...` with exit code 2."""
    try:
        yield
    except (TransactionLogError, CliUsageError) as exc:
        field = f" [{exc.field}]" if getattr(exc, "field", None) else ""
        raise fail(f"{exc}{field}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise fail(f"{where}: {first['msg']}") from None
