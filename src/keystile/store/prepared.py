"""Core statements compiled once and run on the driver's cursor: the hot-path executor.

Why: measured on the one-time-code sign-in (nine statements, two commits),
SQLite itself took about 0.25 ms of CPU per attempt and SQLAlchemy's
per-execution machinery (cache-key generation, execution context, result
proxy, events) about 1.5 ms, even with every statement built once. On a
two-core machine that overhead, not the database, set the ceiling of the
write path. A :class:`Prepared` keeps what SQLAlchemy is good at, the SQL
generated from the Core tables for each dialect and each column type's bind
and result conversions, and drops the per-call machinery: the statement is
compiled once per dialect, and each call converts its parameters with the
types' own processors and hands them to the DBAPI cursor.

Transactions stay SQLAlchemy's (:meth:`Database.write` / :meth:`Database.read`);
a :class:`Prepared` runs inside one on the same DBAPI connection. Use it only
for fixed statements with named :func:`~sqlalchemy.bindparam` parameters
(values given at build time are kept as defaults); anything else keeps the
ordinary ``conn.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Dialect
from sqlalchemy.exc import StatementError
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.selectable import Select

_Processor = Callable[[Any], Any] | None


class _DBAPIConnection(Protocol):
    def cursor(self) -> Any: ...


class Executor(Protocol):
    """Where a prepared statement runs: a SQLAlchemy ``Connection`` or a
    :class:`~keystile.store.database.DriverConnection`, inside a transaction."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def connection(self) -> _DBAPIConnection: ...


Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Bind:
    name: str
    default: Any
    required: bool
    process: _Processor


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positional: bool
    binds: tuple[_Bind, ...]
    results: tuple[_Processor, ...]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        converted: list[Any] = []
        for bind in self.binds:
            if bind.name in values:
                value = values[bind.name]
            elif bind.required:
                raise KeyError(f"missing parameter {bind.name!r}")
            else:
                value = bind.default
            try:
                converted.append(bind.process(value) if bind.process is not None else value)
            except (TypeError, ValueError) as error:
                # As SQLAlchemy's own execution reports a failed bind conversion.
                raise StatementError(
                    f"({type(error).__name__}) {error}", self.sql, None, error
                ) from error
        if self.positional:
            return converted
        return {bind.name: value for bind, value in zip(self.binds, converted, strict=True)}

    def row(self, raw: Sequence[Any]) -> Row:
        return tuple(
            process(value) if process is not None else value
            for process, value in zip(self.results, raw, strict=True)
        )


class Prepared:
    """A Core statement, compiled on first use for each dialect it meets."""

    __slots__ = ("_by_dialect", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = _compile(self.statement, dialect)
            self._by_dialect[dialect.name] = compiled
        return compiled

    def execute(self, conn: Executor, values: Mapping[str, Any] | None = None) -> int:
        """Run a write statement; the number of rows it changed."""
        compiled = self._compiled(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(values or {}))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def first(self, conn: Executor, values: Mapping[str, Any] | None = None) -> Row | None:
        """Run a query; its first row with the column types' conversions, or ``None``."""
        compiled = self._compiled(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(values or {}))
            raw = cursor.fetchone()
        finally:
            cursor.close()
        return compiled.row(raw) if raw is not None else None

    def all(self, conn: Executor, values: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a query; every row with the column types' conversions."""
        compiled = self._compiled(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(values or {}))
            raws = cursor.fetchall()
        finally:
            cursor.close()
        return [compiled.row(raw) for raw in raws]


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if compiled.positional:
        names: Sequence[str] = compiled.positiontup
    else:
        names = list(compiled.binds)
    binds = []
    for name in names:
        parameter = compiled.binds[name]
        if parameter.expanding:
            raise ValueError(f"{name!r}: expanding parameters are not supported here")
        binds.append(
            _Bind(
                name=name,
                default=parameter.value,
                required=parameter.required,
                process=parameter.type.dialect_impl(dialect).bind_processor(dialect),
            )
        )
    columns: Sequence[Any] = ()
    if isinstance(statement, Select):
        columns = list(statement.selected_columns)
    elif isinstance(statement, UpdateBase):  # the RETURNING columns, if any
        columns = list(statement.exported_columns)
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return _Compiled(
        sql=str(compiled), positional=bool(compiled.positional), binds=tuple(binds), results=results
    )
