"""Structural tests for docker-compose.yaml.

Docker is not needed: the compose file is parsed with ``yaml.safe_load`` (which
resolves anchors and ``<<:`` merge keys) and checked as data. Compose variable
interpolation (``${VAR:-default}``) stays literal in the YAML, so the helpers
below resolve it the way ``docker compose`` would with an empty environment,
i.e. every variable takes its documented default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / "docker" / ".env.example"

AIRFLOW_IMAGE = "${AIRFLOW_IMAGE_NAME:-apache/airflow:3.3.2-python3.11}"
AIRFLOW_IMAGE_DEFAULT = "apache/airflow:3.3.2-python3.11"

# Long-running Airflow services and the command each one runs (the image
# entrypoint prefixes it with `airflow`). airflow-init is checked separately.
EXPECTED_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
    "flower": "celery flower",
}
AIRFLOW_INIT = "airflow-init"
BACKING_SERVICES = {
    "redis": "Celery broker",
    "postgres": "Airflow metadata database",
    "warehouse": "AIM warehouse",
    "s3": "S3-compatible object store",
}
REQUIRED_SERVICES = set(EXPECTED_COMMANDS) - {"flower"} | {AIRFLOW_INIT} | set(BACKING_SERVICES)

# Variables docker compose itself understands; they may be documented in
# .env.example without being referenced in the compose file.
COMPOSE_BUILTIN_VARIABLES = {"COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_FILE"}

# Names of environment variables / assignments that hold credentials.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|_KEY(?:_ID)?$|^AIRFLOW_CONN_")

# Secrets with no safe default: written ${VAR:?message}, so docker compose refuses
# to start anything while one is unset or empty. Every *PASSWORD* variable is one.
REQUIRED_VARIABLES = {
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "_AIRFLOW_WWW_USER_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "AIM_WAREHOUSE_PASSWORD",
}
LOOPBACK = {"127.0.0.1", "::1", "[::1]"}

# --------------------------------------------------------------------------
# Compose interpolation
# --------------------------------------------------------------------------
# Text substituted for an interpolation is wrapped in these markers, so the
# credential checks can tell "came from ${...}" apart from "literal in the file".
OPEN, CLOSE = "\x01", "\x02"
_DOLLAR = "\x03"  # stands in for an escaped "$$" while resolving
_RUNTIME_BRACED = re.compile(r"\$\$\{[^{}]*\}")  # $${VAR}: the container's env at runtime
_RUNTIME_NAME = re.compile(r"\$\$[A-Za-z_][A-Za-z0-9_]*")  # $$VAR: same
_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^{}]*))?\}"
)
_BARE_VARIABLE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


def resolve(text: str) -> tuple[str, list[tuple[str, str | None, str]]]:
    """Resolve compose interpolation in ``text`` as with an empty environment.

    Returns the resolved text, with every substituted value wrapped in
    OPEN/CLOSE markers, and the references found as (name, operator, default).
    Runtime references (``$${VAR}``) resolve to an empty marked value.
    """
    refs: list[tuple[str, str | None, str]] = []
    text = _RUNTIME_BRACED.sub(OPEN + CLOSE, text)
    text = _RUNTIME_NAME.sub(OPEN + CLOSE, text)
    text = text.replace("$$", _DOLLAR)

    def substitute(match: re.Match) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        refs.append((name, op, strip_markers(arg)))
        value = arg if op in (":-", "-") else ""  # :? / ? / :+ / + / none -> unset -> ""
        return OPEN + value + CLOSE

    previous = None
    while previous != text:  # innermost first, so nested defaults work
        previous = text
        text = _INTERPOLATION.sub(substitute, text)
    text = _BARE_VARIABLE.sub(substitute, text)
    if "$" in text:
        raise ValueError(f"invalid compose interpolation in {text!r}")
    return text.replace(_DOLLAR, "$"), refs


def strip_markers(text: str) -> str:
    return text.replace(OPEN, "").replace(CLOSE, "")


def value_of(text) -> str:
    """The value docker compose would use with an empty environment."""
    return "" if text is None else strip_markers(resolve(str(text))[0])


def comes_from_interpolation(marked: str) -> bool:
    """True if every character of ``marked`` was substituted from ``${...}``."""
    depth = 0
    for char in marked:
        if char == OPEN:
            depth += 1
        elif char == CLOSE:
            depth -= 1
        elif depth <= 0:
            return False
    return True


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
class _DuplicateKeyCheckingLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys like docker compose does."""

    def construct_mapping(self, node, deep=False):
        keys = [k.value for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {duplicates}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


@pytest.fixture(scope="module")
def compose() -> dict:
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def airflow_services(services) -> dict:
    """Every service running the common Airflow image (found by image, so a
    newly added `<<: *airflow-common` service is covered automatically)."""
    return {name: svc for name, svc in services.items() if svc.get("image") == AIRFLOW_IMAGE}


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), (
            f"{ENV_EXAMPLE.name}:{number}: expected KEY=value, got {line!r}"
        )
        values[key] = value.strip().strip("'\"")
    return values


@pytest.fixture(scope="module")
def documented_credentials(env_example) -> set[str]:
    """The documented local default credentials (non-empty secret values)."""
    return {v for k, v in env_example.items() if v and SECRET_NAME.search(k)}


def environment(svc: dict) -> dict[str, str | None]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return {
            item.partition("=")[0]: (item.partition("=")[2] if "=" in item else None)
            for item in env
        }
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def required(name: str) -> str:
    """Pattern of a compose reference to `name` that fails without a value: ${NAME:?message}."""
    return rf"\$\{{{re.escape(name)}:\?[^{{}}]*[^{{}}\s][^{{}}]*\}}"


def published_ports(svc: dict) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of each published port, short or long syntax, resolved."""
    result = []
    for port in svc.get("ports") or []:
        if isinstance(port, dict):
            result.append(tuple(value_of(port.get(key)) for key in ("host_ip", "published", "target")))
            continue
        parts = value_of(port).rsplit(":", 2)
        result.append(tuple([""] * (3 - len(parts)) + parts))
    return result


def command_words(value) -> list[str]:
    if value is None:
        return []
    return value.split() if isinstance(value, str) else [str(v) for v in value]


def mounts(svc: dict) -> dict[str, str]:
    """Container path -> normalised host source, for short and long syntax."""
    result = {}
    for volume in svc.get("volumes", []):
        if isinstance(volume, str):
            source, target = value_of(volume).split(":")[:2]
        else:
            source, target = value_of(volume.get("source")), value_of(volume.get("target"))
        result[os.path.normpath(target)] = os.path.normpath(source)
    return result


def has_healthcheck(svc: dict) -> bool:
    check = svc.get("healthcheck") or {}
    return bool(check.get("test")) and check.get("test") not in ("NONE", ["NONE"]) and not check.get(
        "disable"
    )


def walk(node, path=()):
    """Yield (path, scalar) for every leaf of the YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, path + (str(key),))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, path + (f"[{index}]",))
    else:
        yield path, node


_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^\s:/@?#]*):(?P<value>[^\s/@?#]*)@")
_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_])(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\"[^\"]*\"|'[^']*'|[^\s;&|]*)"
)
# "secretKey": "..." / 'password': '...' in inline JSON/YAML/INI content.
_QUOTED_PAIR = re.compile(
    r"[\"'](?P<name>[A-Za-z0-9_.-]*(?:password|passwd|secret|token|key)[A-Za-z0-9_.-]*)[\"']"
    r"\s*[:=]\s*(?P<value>\"[^\"]*\"|'[^']*')",
    re.IGNORECASE,
)
_SECRET_FLAG = re.compile(
    r"--(?P<name>password|passwd|secret|token|api-key|access-key|secret-key)[= ](?P<value>\"[^\"]*\"|'[^']*'|\S+)",
    re.IGNORECASE,
)


def credential_findings(document) -> list[tuple[str, str, str]]:
    """Every credential-looking value in the document as (where, what, marked value).

    Scans all environment values, commands, healthchecks, build args, x-*
    blocks, inline configs ...: values of *_PASSWORD / *SECRET* / *_KEY /
    AIRFLOW_CONN_* keys, passwords in URLs, NAME=value assignments, quoted
    "secretKey": "..." pairs and --password style flags.
    """
    findings = []
    for path, leaf in walk(document):
        where = "/".join(path)
        key = path[-1] if path else ""
        marked = "" if leaf is None else resolve(str(leaf))[0]
        if SECRET_NAME.search(key):
            findings.append((where, key, marked))
        for match in _URL_PASSWORD.finditer(marked):
            findings.append((where, "password in URL", match.group("value")))
        for match in _ASSIGNMENT.finditer(marked):
            if SECRET_NAME.search(match.group("name")):
                findings.append((where, match.group("name"), match.group("value").strip("'\"")))
        for match in _QUOTED_PAIR.finditer(marked):
            findings.append((where, match.group("name"), match.group("value")[1:-1]))
        for match in _SECRET_FLAG.finditer(marked):
            findings.append((where, "--" + match.group("name"), match.group("value").strip("'\"")))
    return findings


def all_references(document) -> list[tuple[str, str | None, str]]:
    refs = []
    for _, leaf in walk(document):
        if isinstance(leaf, str):
            refs.extend(resolve(leaf)[1])
    return refs


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------
def test_compose_file_has_no_duplicate_keys():
    # yaml.safe_load silently keeps the last duplicate; docker compose rejects them.
    yaml.load(COMPOSE_FILE.read_text(encoding="utf-8"), Loader=_DuplicateKeyCheckingLoader)


def test_expected_services_are_present(services):
    missing = REQUIRED_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"
    for name in REQUIRED_SERVICES:
        assert "profiles" not in services[name], f"{name} must start by default (no profile)"


def test_every_airflow_service_runs_the_airflow_image(services, airflow_services):
    for name in set(EXPECTED_COMMANDS) | {AIRFLOW_INIT}:
        if name in services:
            assert services[name].get("image") == AIRFLOW_IMAGE, f"{name} image"
    assert value_of(AIRFLOW_IMAGE) == AIRFLOW_IMAGE_DEFAULT
    unexpected = set(airflow_services) - set(EXPECTED_COMMANDS) - {AIRFLOW_INIT}
    assert not unexpected, f"add the expected command of {sorted(unexpected)} to EXPECTED_COMMANDS"


def test_every_airflow_service_runs_the_expected_command(services):
    for name, expected in EXPECTED_COMMANDS.items():
        if name not in services:
            continue
        svc = services[name]
        assert command_words(svc.get("command")) == expected.split(), f"{name} command"
        assert "entrypoint" not in svc, f"{name} must keep the image entrypoint"


def test_airflow_init_migrates_the_database_and_creates_the_admin(services):
    init = services[AIRFLOW_INIT]
    env = environment(init)
    # The image entrypoint runs `airflow db migrate` and creates the admin user
    # when these are set; the script then calls it and verifies the migration.
    assert env.get("_AIRFLOW_DB_MIGRATE") == "true"
    assert env.get("_AIRFLOW_WWW_USER_CREATE") == "true"
    assert value_of(env.get("_AIRFLOW_WWW_USER_USERNAME"))
    # No default admin password: the stack does not start until one is set.
    assert re.fullmatch(required("_AIRFLOW_WWW_USER_PASSWORD"), env.get("_AIRFLOW_WWW_USER_PASSWORD") or "")
    assert env.get("_PIP_ADDITIONAL_REQUIREMENTS") == ""
    words = command_words(init.get("entrypoint")) + command_words(init.get("command"))
    assert words[:2] == ["/bin/bash", "-c"], "airflow-init runs a bash script"
    script = words[2]
    assert re.search(r"^\s*/entrypoint airflow db check-migrations\b", script, re.M)
    # Refuses to start the stack without a shared JWT secret.
    assert re.search(r'-z "\$\$\{AIRFLOW__API_AUTH__JWT_SECRET[^}]*\}" \]\]; then', script)
    assert "exit 1" in script
    assert "restart" not in init or init["restart"] == "no", "airflow-init is one-shot"


def test_every_airflow_service_uses_the_celery_executor(services, airflow_services):
    assert set(EXPECTED_COMMANDS) - {"flower"} | {AIRFLOW_INIT} <= set(airflow_services)
    for name, svc in airflow_services.items():
        env = environment(svc)
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name
        broker = urlparse(value_of(env.get("AIRFLOW__CELERY__BROKER_URL")))
        assert broker.scheme == "redis" and broker.hostname == "redis", f"{name} broker"
        backend = urlparse(value_of(env.get("AIRFLOW__CELERY__RESULT_BACKEND")))
        assert backend.scheme.startswith("db+postgresql"), f"{name} result backend"
        assert backend.hostname == "postgres", f"{name} result backend host"
        metadata = urlparse(value_of(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")))
        assert metadata.scheme.startswith("postgresql") and metadata.hostname == "postgres", name
        assert {broker.hostname, backend.hostname} <= set(services)
        # the workers import Great Expectations once, at start (aim.celery_worker), not in every task
        assert value_of(env.get("AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS")) == "aim.celery_worker.CELERY_CONFIG", name


def test_core_airflow_settings(airflow_services):
    for name, svc in airflow_services.items():
        env = environment(svc)
        assert value_of(env.get("AIRFLOW__CORE__LOAD_EXAMPLES")).lower() == "false", name
        assert value_of(env.get("AIRFLOW__CORE__DAGS_FOLDER")) == "/opt/airflow/dags", name
        assert value_of(env.get("AIM_PROJECT_ROOT")) == "/opt/airflow", name
        execution_api = urlparse(value_of(env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL")))
        assert execution_api.hostname == "airflow-apiserver", name
        # Shared secrets come from the environment, never from this file, and must be set.
        for secret in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
            assert re.fullmatch(required(secret), env.get(secret) or ""), f"{name} {secret}"


def test_project_folders_are_mounted_into_every_airflow_service(airflow_services):
    for name, svc in airflow_services.items():
        env = environment(svc)
        root = value_of(env.get("AIM_PROJECT_ROOT"))
        expected = {
            value_of(env.get("AIRFLOW__CORE__DAGS_FOLDER", "/opt/airflow/dags")): "dags",
            value_of(env.get("AIRFLOW__CORE__PLUGINS_FOLDER", "/opt/airflow/plugins")): "plugins",
            f"{root}/expectations": "expectations",
            f"{root}/sql": "sql",
            "/opt/airflow/logs": "logs",
        }
        mounted = mounts(svc)
        for target, source in expected.items():
            assert mounted.get(os.path.normpath(target)) == source, (
                f"{name}: ./{source} must be mounted at {target}, mounts: {mounted}"
            )


def test_aim_runtime_configuration(services, airflow_services):
    for name, svc in airflow_services.items():
        env = environment(svc)
        warehouse = urlparse(value_of(env.get("AIM_WAREHOUSE_URL")))
        assert warehouse.scheme == "postgresql+psycopg2", f"{name} AIM_WAREHOUSE_URL"
        assert warehouse.hostname == "warehouse" and warehouse.port == 5432, name
        assert value_of(env.get("AIM_EXPORT_URL")).startswith("s3://"), name
        endpoint = urlparse(value_of(env.get("AWS_ENDPOINT_URL")))
        assert (endpoint.hostname, endpoint.port) == ("s3", 8333), f"{name} AWS_ENDPOINT_URL"
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            assert value_of(env.get(variable)), f"{name} {variable}"
        # The police records source points at a real city system in production:
        # only ever from the environment, with no default in this file.
        rms = env.get("AIRFLOW_CONN_MPD_RMS")
        assert rms is None or re.fullmatch(r"\$\{AIRFLOW_CONN_MPD_RMS(:?-)?\}", rms), (
            f"{name}: AIRFLOW_CONN_MPD_RMS must come from the environment, got {rms!r}"
        )
    assert {"warehouse", "s3"} <= set(services)


def test_backing_services(compose, services):
    for name in ("postgres", "warehouse"):
        assert re.fullmatch(r"postgres:1[56](\b.*)?", services[name]["image"]), name
    assert services["redis"]["image"].startswith("redis:")
    named_volumes = set(compose.get("volumes") or {})
    data = {name: mounts(services[name]).get("/var/lib/postgresql/data") for name in ("postgres", "warehouse")}
    assert data["warehouse"] in named_volumes, "warehouse data must live in a named volume"
    assert data["postgres"] in named_volumes and data["postgres"] != data["warehouse"]
    s3 = services["s3"]
    assert "seaweedfs" in value_of(s3["image"])
    words = command_words(s3.get("command"))
    assert words[:1] == ["server"] and "-s3" in words, "s3 runs `server -s3`"


def test_no_undocumented_credentials(compose, documented_credentials):
    # Resolved with an empty environment, every credential is either empty or
    # one of the documented local defaults from docker/.env.example.
    assert documented_credentials, f"no credentials documented in {ENV_EXAMPLE}"
    undocumented = [
        (where, what, strip_markers(value))
        for where, what, value in credential_findings(compose)
        if strip_markers(value) and strip_markers(value) not in documented_credentials
    ]
    assert not undocumented, f"credentials not documented in docker/.env.example: {undocumented}"


def test_credentials_are_overridable_from_the_environment(compose):
    # ... and every non-empty credential comes from ${VAR...}, so production
    # overrides it from the environment / .env instead of editing this file.
    hard_coded = [
        (where, what, strip_markers(value))
        for where, what, value in credential_findings(compose)
        if strip_markers(value) and not comes_from_interpolation(value)
    ]
    assert not hard_coded, f"credentials must use ${{VAR:-default}} interpolation: {hard_coded}"


def test_env_example_documents_the_compose_variables(compose, env_example):
    refs = all_references(compose)
    referenced = {name for name, _, _ in refs}
    env_text = ENV_EXAMPLE.read_text(encoding="utf-8")
    undocumented = sorted(n for n in referenced if not re.search(rf"\b{re.escape(n)}\b", env_text))
    assert not undocumented, f"variables missing from docker/.env.example: {undocumented}"
    secrets_not_listed = sorted(n for n in referenced if SECRET_NAME.search(n) and n not in env_example)
    assert not secrets_not_listed, f"credentials need a KEY= line in .env.example: {secrets_not_listed}"
    unused = sorted(set(env_example) - referenced - COMPOSE_BUILTIN_VARIABLES)
    assert not unused, f"docker/.env.example documents unused variables: {unused}"
    mismatched = sorted(
        (name, default, env_example[name])
        for name, op, default in refs
        if op in (":-", "-") and name in env_example and default != env_example[name]
    )
    assert not mismatched, f"compose default != .env.example value: {mismatched}"


def test_required_secrets_have_no_default_and_stop_compose_when_unset(compose, env_example):
    # Every reference to a required secret (or to any *PASSWORD* variable) is
    # ${VAR:?message}: no weak default, and a message saying what to set.
    refs = all_references(compose)
    with_default = sorted({name for name, op, _ in refs
                           if (name in REQUIRED_VARIABLES or "PASSWORD" in name) and op != ":?"})
    assert not with_default, f"must be ${{VAR:?message}}, not have a default: {with_default}"
    messages = {name: message for name, op, message in refs if op == ":?"}
    assert REQUIRED_VARIABLES <= set(messages), f"not required: {sorted(REQUIRED_VARIABLES - set(messages))}"
    for name, message in messages.items():
        assert name in message and ".env" in message, f"{name}: the message names the variable and .env"
    # .env.example lists each one with no value, and the header says how to generate it.
    header = ENV_EXAMPLE.read_text(encoding="utf-8").split("\n\n", 1)[0]
    for name in REQUIRED_VARIABLES:
        assert env_example.get(name) == "", f"docker/.env.example: {name}= must be empty (no shared value)"
        assert re.search(rf"^#\s+{re.escape(name)}\s+python3 -c", header, re.M), f"{name}: how to generate it"


def test_published_ports_are_bound_to_loopback(services):
    # Nothing is published on all interfaces; the UI goes behind a reverse proxy.
    for name, svc in services.items():
        for host_ip, host_port, container_port in published_ports(svc):
            where = host_ip or "all interfaces"
            assert host_ip in LOOPBACK, f"{name} publishes {host_port}:{container_port} on {where}"
    assert published_ports(services["airflow-apiserver"]) == [("127.0.0.1", "8080", "8080")]
    assert services["airflow-apiserver"]["ports"] == ["127.0.0.1:${AIRFLOW_API_PORT:-8080}:8080"]


def test_depended_on_services_have_healthchecks(services):
    for name, svc in services.items():
        depends_on = svc.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: use depends_on with conditions"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            condition = (spec or {}).get("condition")
            target = services[dependency]
            if condition == "service_completed_successfully":
                assert target.get("restart", "no") == "no", f"{dependency} must be one-shot"
            else:
                assert condition == "service_healthy", f"{name} -> {dependency}: {condition}"
                assert has_healthcheck(target), f"{dependency} is depended on but has no healthcheck"
            if not svc.get("profiles"):
                assert not target.get("profiles"), f"{name} depends on profile-only {dependency}"


def test_long_running_services_have_healthchecks(services):
    for name, svc in services.items():
        if svc.get("restart") in ("always", "unless-stopped", "on-failure"):
            assert has_healthcheck(svc), f"{name} has no healthcheck"


def test_production_image_build_installs_pinned_requirements(services):
    builders = {name: svc for name, svc in services.items() if "build" in svc}
    assert builders, "expected a build recipe for the production image"
    for name, svc in builders.items():
        assert svc.get("profiles"), f"{name} is build-only and must not start by default"
        build = svc["build"]
        recipe = build.get("dockerfile_inline", "")
        assert re.search(r"-r \S*requirements\.txt", recipe), name
        assert re.search(r"-c \S*constraints\.txt", recipe), name
        assert "apache-airflow==" in recipe, f"{name} must pin apache-airflow to the base image"
        assert value_of((build.get("args") or {}).get("AIRFLOW_BASE_IMAGE")) == AIRFLOW_IMAGE_DEFAULT
