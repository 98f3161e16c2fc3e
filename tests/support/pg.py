"""A small handle on one throwaway database of the real test PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pg8000.native
from login_etl.config import parse_database_url


def connect(url: str) -> pg8000.native.Connection:
    params = parse_database_url(url)
    return pg8000.native.Connection(
        user=params.user,
        password=params.password,
        database=params.database,
        host=params.host or "localhost",
        port=params.port,
        unix_sock=params.unix_sock,
    )


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class TestDB:
    """A fresh database: ``url`` for the code under test, ``query``/``count`` for assertions."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.name = "t_" + uuid.uuid4().hex[:12]
        admin = connect(server_url)
        try:
            admin.run(f'CREATE DATABASE "{self.name}"')
        finally:
            admin.close()
        self.url = with_database(server_url, self.name)
        self._conn: pg8000.native.Connection | None = None

    def query(self, sql: str, **params: Any) -> list[list[Any]]:
        if self._conn is None:
            self._conn = connect(self.url)
        return self._conn.run(sql, **params) or []

    def count(self, table: str, where: str = "TRUE", **params: Any) -> int:
        return int(self.query(f"SELECT count(*) FROM {table} WHERE {where}", **params)[0][0])

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        admin = connect(self.server_url)
        try:
            admin.run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            admin.close()
