"""The database secret's port is checked when read, as every setting is (config.py's rule).

An out-of-range or non-integer port in the RDS-shaped secret used to pass ``int()`` and fail
later: 99999 as an ``OverflowError`` deep in the socket call ("unexpected database error"),
``true`` as port 1, 5432.9 silently as 5432. A table over the shapes a hand-edited secret takes.
"""

from __future__ import annotations

from typing import Any

import pytest
from login_etl.errors import ConfigError
from login_etl.secrets import rds_conn_params

BASE = {"username": "etl", "password": "pw-not-shown-1", "host": "db.internal", "dbname": "logins"}


@pytest.mark.parametrize(
    "port", [0, -1, 65536, 99999, "99999", "abc", " ", "+5432", True, 5432.9, "5432.0", [5432]]
)
def test_a_bad_port_is_a_configuration_error(port: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        rds_conn_params({**BASE, "port": port})
    assert str(caught.value) == "the database secret's port is not a number from 1 to 65535"


# Absent, null or empty: the default, as an RDS secret may omit it.
GOOD = [(5432, 5432), ("6432", 6432), (1, 1), (65535, 65535), (None, 5432), ("", 5432)]


@pytest.mark.parametrize(("port", "expected"), GOOD)
def test_a_good_port_is_used(port: Any, expected: int) -> None:
    assert rds_conn_params({**BASE, "port": port}).port == expected
