"""An error line never shows a URL's user:password, whichever library wrote the message.

botocore quotes the endpoint it could not reach (``Could not connect to the endpoint URL:
"http://user:pw@host/"``), and ``main`` prints that text. A table over every way a URL with
credentials reaches an SQS call: the option, the environment, and the runner's. Each
points at the discard port of loopback, so nothing leaves the machine and the call fails fast.
"""

from __future__ import annotations

import pytest
from login_etl_cli.main import main

SECRET = "pw-never-echoed-2b9d"
WITH_CREDENTIALS = f"http://etl:{SECRET}@127.0.0.1:9"
PLAIN = "http://127.0.0.1:9"
Q = f"{PLAIN}/123456789012/q"
SEND = ["send", "--queue-url", Q, "--synthetic", "1"]

CASES = [
    # (id, argv, AWS_ENDPOINT_URL)
    ("--endpoint-url", [*SEND, "--endpoint-url", WITH_CREDENTIALS], PLAIN),
    ("AWS_ENDPOINT_URL", SEND, WITH_CREDENTIALS),
    ("drain, AWS_ENDPOINT_URL", ["drain", "--queue-url", Q], WITH_CREDENTIALS),
]


@pytest.mark.parametrize(("argv", "endpoint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_url_with_credentials_is_shown_without_them(
    argv: list[str],
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_environ: None,
) -> None:
    for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    # A database and a key that parse: the commands reach SQS before they need either.
    monkeypatch.setenv("DATABASE_URL", "postgresql://etl@127.0.0.1:9/logins")
    monkeypatch.setenv("PII_KEYS", "k1:" + "A" * 43 + "=")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    code = main(argv)

    err = capsys.readouterr().err
    assert SECRET not in err, err
    assert "etl:" not in err
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert code == 1 and "127.0.0.1:9" in line, err
