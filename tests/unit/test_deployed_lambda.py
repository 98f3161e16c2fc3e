"""A plaintext PII_KEYS is refused on a real Lambda, and accepted everywhere it is meant for."""

from __future__ import annotations

import pytest
from login_etl.config import PiiSettings, on_deployed_lambda
from login_etl.errors import ConfigError

KEYS = {"PII_KEYS": "k1:" + "A" * 86}
LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "stack-login-etl"}

# (where, extra environment, is it a deployed Lambda?)
PLACES = [
    ("the CLI, the tests, the demo", {}, False),
    ("real AWS Lambda", LAMBDA, True),
    ("sam local invoke", LAMBDA | {"AWS_SAM_LOCAL": "true"}, False),
    ("LocalStack 3+", LAMBDA | {"AWS_ENDPOINT_URL": "http://localhost.localstack.cloud:4566"}, False),
    ("older LocalStack", LAMBDA | {"LOCALSTACK_HOSTNAME": "172.17.0.2"}, False),
    ("AWS_SAM_LOCAL set to anything but true", LAMBDA | {"AWS_SAM_LOCAL": "false"}, True),
    ("an empty LocalStack marker", LAMBDA | {"AWS_ENDPOINT_URL": " "}, True),
]


@pytest.mark.parametrize(("where", "env", "deployed"), PLACES, ids=[p[0] for p in PLACES])
def test_pii_keys_is_refused_only_on_a_deployed_function(
    where: str, env: dict[str, str], deployed: bool
) -> None:
    assert on_deployed_lambda(env) is deployed
    if deployed:
        with pytest.raises(ConfigError, match="PII_KEYS is refused on a deployed Lambda") as caught:
            PiiSettings.from_env(KEYS | env)
        assert KEYS["PII_KEYS"] not in str(caught.value)
    else:
        assert PiiSettings.from_env(KEYS | env).keys_spec == KEYS["PII_KEYS"]


def test_the_secret_is_accepted_on_a_deployed_function() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:login-etl/pii-keys-AbCdEf"
    assert PiiSettings.from_env(LAMBDA | {"PII_KEYS_SECRET_ARN": arn}).secret_arn == arn
