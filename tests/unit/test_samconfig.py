"""samconfig.toml and docker-compose.yml agree with the template and with each other.

SAM CLI reads samconfig.toml only when a command runs, against an AWS account or Docker; a
wrong parameter name there fails the deploy at the last step. These checks run offline.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("default", "localstack", "prod")
COMMANDS = ("build", "validate", "deploy", "local_invoke")
# SAM CLI's parameter override syntax: Key=Value, with a non-empty value (it refuses "Key=").
OVERRIDE = re.compile(r"^([A-Za-z0-9]+)=(\S+)$")
HOOK = ROOT / "localstack" / "init" / "ready.d" / "10-login-etl.py"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def parameters() -> dict[str, dict[str, Any]]:
    template, _ = decode_str((ROOT / "template.yaml").read_text())
    return dict(template["Parameters"])


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def overrides(config: dict[str, Any], env: str, command: str) -> dict[str, str]:
    items = config[env][command]["parameters"].get("parameter_overrides", [])
    assert isinstance(items, list), "keep parameter_overrides a TOML list, one Key=Value each"
    parsed = {}
    for item in items:
        match = OVERRIDE.match(item)
        assert match, f"[{env}.{command}] {item!r} is not Key=Value (SAM refuses an empty value)"
        parsed[match[1]] = match[2]
    return parsed


def violates(parameter: dict[str, Any], value: str) -> str | None:
    """Why CloudFormation would refuse ``value`` for ``parameter``; None if it would accept it."""
    if "AllowedValues" in parameter and value not in [str(v) for v in parameter["AllowedValues"]]:
        return f"not one of {parameter['AllowedValues']}"
    if parameter.get("Type") == "Number":
        number = float(value)
        if "MinValue" in parameter and number < float(parameter["MinValue"]):
            return "below MinValue"
        if "MaxValue" in parameter and number > float(parameter["MaxValue"]):
            return "above MaxValue"
    pattern = parameter.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, value):
        return f"does not match {pattern}"
    return None


def test_samconfig_parses_with_version(config: dict[str, Any]) -> None:
    assert config["version"] == 0.1


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_environment_configures_every_command(config: dict[str, Any], env: str, command: str) -> None:
    assert isinstance(config[env][command]["parameters"], dict)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("command", ["deploy", "local_invoke"])
def test_parameter_overrides_name_real_template_parameters(
    config: dict[str, Any], parameters: dict[str, Any], env: str, command: str
) -> None:
    unknown = set(overrides(config, env, command)) - set(parameters)
    assert not unknown, f"[{env}.{command}] names no template parameter: {sorted(unknown)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_override_values_satisfy_the_template_constraints(
    config: dict[str, Any], parameters: dict[str, Any], env: str
) -> None:
    for name, value in overrides(config, env, "deploy").items():
        if value.startswith("REPLACE_ME"):
            continue  # see the next test
        assert violates(parameters[name], value) is None, (env, name, value)


def test_prod_placeholders_cannot_be_deployed_unedited(
    config: dict[str, Any], parameters: dict[str, Any]
) -> None:
    prod = overrides(config, "prod", "deploy")
    for name in ("DbSecretArn", "PiiKeysSecretArn"):
        assert prod[name].startswith("REPLACE_ME")
        assert violates(parameters[name], prod[name]), f"{name}'s placeholder would deploy"


@pytest.mark.parametrize(
    ("env", "target"), [("default", "aws"), ("localstack", "localstack"), ("prod", "aws")]
)
def test_each_environment_deploys_to_its_target(config: dict[str, Any], env: str, target: str) -> None:
    assert overrides(config, env, "deploy")["Target"] == target


def test_environments_deploy_distinct_stacks(config: dict[str, Any]) -> None:
    names = [config[env]["global"]["parameters"]["stack_name"] for env in ENVIRONMENTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_validate_runs_cfn_lint(config: dict[str, Any], env: str) -> None:
    assert config[env]["validate"]["parameters"]["lint"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_needs_only_plain_iam_capability(config: dict[str, Any], env: str) -> None:
    # The template names no IAM resource, so CAPABILITY_NAMED_IAM is not needed.
    assert config[env]["deploy"]["parameters"]["capabilities"] == "CAPABILITY_IAM"


# --- sam local invoke and LocalStack line up with docker-compose.yml -----------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_local_invoke_joins_the_compose_network_with_the_gitignored_env_file(
    config: dict[str, Any], compose: dict[str, Any], env: str
) -> None:
    local = config[env]["local_invoke"]["parameters"]
    assert local["docker_network"] == compose["networks"]["login-etl"]["name"]
    ignored = subprocess.run(["git", "check-ignore", "-q", local["env_vars"]], cwd=ROOT, check=False)
    assert ignored.returncode == 0, f"{local['env_vars']} holds a key: it must be gitignored"


def test_localstack_lambdas_join_the_network_postgres_is_on(compose: dict[str, Any]) -> None:
    network = compose["networks"]["login-etl"]["name"]
    localstack = compose["services"]["localstack"]
    assert localstack["environment"]["LAMBDA_DOCKER_NETWORK"] == network
    assert "login-etl" in compose["services"]["postgres"]["networks"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in localstack["volumes"]


def test_localstack_image_is_pinned(compose: dict[str, Any]) -> None:
    image = compose["services"]["localstack"]["image"]
    assert re.fullmatch(r"localstack/localstack:\d+\.\d+\.\d+", image), image


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert "healthcheck" in service, name


def test_postgres_starts_with_the_projects_schema(compose: dict[str, Any]) -> None:
    (mount,) = compose["services"]["postgres"]["volumes"]
    source, target, _ = mount.split(":")
    assert (ROOT / source).resolve() == ROOT / "function" / "login_etl" / "sql" / "schema.sql"
    assert target.startswith("/docker-entrypoint-initdb.d/")


def test_localstack_deploy_uses_the_bucket_and_secrets_the_hook_creates(
    config: dict[str, Any],
) -> None:
    hook = HOOK.read_text()
    bucket = config["localstack"]["deploy"]["parameters"]["s3_bucket"]
    assert f'BUCKET = "{bucket}"' in hook
    makefile = (ROOT / "mk" / "deploy.mk").read_text()
    for secret in ("login-etl/db", "login-etl/pii-keys"):
        assert f'"{secret}"' in hook
        assert f"arn {secret}" in makefile
    # LocalStack runs a .py hook with its own interpreter (exec), in the container and on the host.
    compile(hook, str(HOOK), "exec")


def test_hook_db_secret_matches_the_compose_postgres(compose: dict[str, Any]) -> None:
    env = compose["services"]["postgres"]["environment"]
    hook = HOOK.read_text()
    assert f'"LOGIN_ETL_DB_USER") or "{env["POSTGRES_USER"]}"' in hook
    assert f'"LOGIN_ETL_DB_PASSWORD") or "{env["POSTGRES_PASSWORD"]}"' in hook
    assert f'"LOGIN_ETL_DB_NAME") or "{env["POSTGRES_DB"]}"' in hook
    assert '"LOGIN_ETL_DB_HOST") or "postgres"' in hook
