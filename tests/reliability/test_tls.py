"""TLS is real: a PostgreSQL with ``ssl = on`` and a CA made in the test; verify-full or nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from login_etl.config import DbSettings, Settings, parse_database_url
from login_etl.connection import open_connection
from login_etl.errors import StoreError, TransientStoreError
from support.pgcluster import LocalCluster, local_cluster, ssl_capable_bin
from support.tls import Pki, make_pki

PASSWORD = "tls-Secret-pw-7f3a"  # a password the tests look for in every error message

HBA = [
    # Over TCP, only TLS with a password; plaintext TCP is refused by the server itself.
    "hostssl all all 127.0.0.0/8 scram-sha-256",
    "hostnossl all all 127.0.0.0/8 reject",
]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def tls_cluster(pki: Pki) -> Iterator[LocalCluster]:
    bin_dir = ssl_capable_bin()
    if bin_dir is None:
        reason = (
            "no PostgreSQL built with OpenSSL here (pgserver's is built without it); "
            "install Debian's postgresql package for this test (.ci/run does)"
        )
        if os.environ.get("LOGIN_ETL_REQUIRE_DB") == "1":
            pytest.fail(f"LOGIN_ETL_REQUIRE_DB=1: {reason}")
        pytest.skip(reason)
    files = {"server.crt": pki.server_cert, "server.key": pki.server_key}
    conf = {
        "ssl": "on",
        "ssl_cert_file": "'server.crt'",
        "ssl_key_file": "'server.key'",
        # 127.0.0.2 is loopback too (Linux routes 127/8 to lo) but the certificate does not name it.
        "listen_addresses": "'127.0.0.1,127.0.0.2'",
    }
    with local_cluster(bin_dir, password=PASSWORD, conf=conf, hba=HBA, files=files) as cluster:
        yield cluster


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _settings(sslmode: str, rootcert: str | None = None) -> DbSettings:
    return DbSettings(url="unused", sslmode=sslmode, sslrootcert=rootcert, connect_timeout_s=5)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_verify_full_with_the_right_ca_connects_over_tls(
    tls_cluster: LocalCluster, pki: Pki, tmp_path: Path, host: str
) -> None:
    ca = _write(tmp_path, "ca.pem", pki.ca_cert)
    conn = open_connection(parse_database_url(tls_cluster.url(host=host)), _settings("verify-full", ca))
    try:
        [[ssl_on, version]] = conn.run("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert ssl_on is True
        assert version in ("TLSv1.2", "TLSv1.3")
    finally:
        conn.close()


def test_verify_full_with_a_wrong_ca_is_refused_without_leaking_the_password(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    other_ca = _write(tmp_path, "other-ca.pem", make_pki("an impostor CA").ca_cert)
    with pytest.raises(TransientStoreError) as caught:
        open_connection(parse_database_url(tls_cluster.url()), _settings("verify-full", other_ca))
    assert "SSL" in type(caught.value.__cause__).__name__ or "SSL" in repr(caught.value.__cause__)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


def test_verify_full_refuses_an_address_the_certificate_does_not_name(
    tls_cluster: LocalCluster, pki: Pki, tmp_path: Path
) -> None:
    ca = _write(tmp_path, "ca.pem", pki.ca_cert)
    # The right CA, a reachable server, but 127.0.0.2 is not in the certificate's names.
    with pytest.raises(TransientStoreError):
        open_connection(parse_database_url(tls_cluster.url(host="127.0.0.2")), _settings("verify-full", ca))
    # The same address is fine when the name is not checked: the refusal was the hostname check.
    conn = open_connection(parse_database_url(tls_cluster.url(host="127.0.0.2")), _settings("require"))
    conn.close()


def test_sslmode_disable_speaks_plaintext_so_a_tls_only_server_refuses_it(
    tls_cluster: LocalCluster,
) -> None:
    with pytest.raises(TransientStoreError) as caught:
        conn = open_connection(parse_database_url(tls_cluster.url()), _settings("disable"))
        # Reached only if "disable" negotiated TLS (pg8000 reads ssl_context=None as "prefer").
        [[ssl_on]] = conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        conn.close()
        pytest.fail(f"sslmode=disable connected, with TLS={ssl_on}")
    assert PASSWORD not in str(caught.value)


def test_require_encrypts_without_verifying(tls_cluster: LocalCluster) -> None:
    conn = open_connection(parse_database_url(tls_cluster.url()), _settings("require"))
    try:
        assert conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[True]]
    finally:
        conn.close()


def test_a_wrong_password_is_refused_and_never_echoed(
    tls_cluster: LocalCluster, pki: Pki, tmp_path: Path
) -> None:
    ca = _write(tmp_path, "ca.pem", pki.ca_cert)
    wrong = "Wrong-pw-" + PASSWORD[::-1]
    url = tls_cluster.url().replace(PASSWORD, wrong)
    with pytest.raises(StoreError) as caught:
        open_connection(parse_database_url(url), _settings("verify-full", ca))
    assert str(caught.value) == "password authentication failed: wrong user or password (SQLSTATE 28P01)"
    for text in (str(caught.value), repr(caught.value), repr(parse_database_url(url))):
        assert wrong not in text and PASSWORD not in text


# --- TLS asked for in DATABASE_URL is never dropped ---------------------------------------------
def _ssl_of(env: dict[str, str]) -> bool:
    """Connect as the function would, from the environment alone; True if the session is TLS."""
    settings = Settings.from_env({"PII_KEYS": "k1:" + "A" * 86, **env})
    conn = open_connection(parse_database_url(env["DATABASE_URL"]), settings.db)
    try:
        [[ssl_on]] = conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        return bool(ssl_on)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("query", "db_sslmode"),
    [
        ("?sslmode=require", None),  # the URL alone
        ("?sslmode=require", "disable"),  # the stricter of the two wins
        ("?sslmode=disable", "require"),
        ("?sslmode=verify-full&sslrootcert={ca}", None),
        ("?sslmode=verify-ca&sslrootcert={ca}", "require"),
        ("?sslrootcert={ca}", "verify-full"),  # the CA from the URL, the mode from DB_SSLMODE
    ],
)
def test_tls_asked_for_in_the_url_or_db_sslmode_is_used(
    tls_cluster: LocalCluster, pki: Pki, tmp_path: Path, query: str, db_sslmode: str | None
) -> None:
    ca = _write(tmp_path, "ca.pem", pki.ca_cert)
    env = {"DATABASE_URL": tls_cluster.url() + query.format(ca=ca)}
    if db_sslmode is not None:
        env["DB_SSLMODE"] = db_sslmode
    # The server refuses plaintext TCP outright, so connecting at all proves TLS; ask it anyway.
    assert _ssl_of(env) is True


def test_verify_full_from_the_url_refuses_a_wrong_ca(tls_cluster: LocalCluster, tmp_path: Path) -> None:
    other_ca = _write(tmp_path, "other-ca.pem", make_pki("an impostor CA").ca_cert)
    with pytest.raises(TransientStoreError) as caught:
        _ssl_of({"DATABASE_URL": f"{tls_cluster.url()}?sslmode=verify-full&sslrootcert={other_ca}"})
    assert PASSWORD not in str(caught.value)


def test_the_port_in_the_url_query_is_used(tls_cluster: LocalCluster) -> None:
    port = tls_cluster.port
    url = tls_cluster.url().replace(f":{port}/", "/") + f"?port={port}&sslmode=require"
    assert _ssl_of({"DATABASE_URL": url}) is True
