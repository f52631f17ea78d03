"""The compose files: valid against the compose-spec schema, and running what the native
stack runs, with the variables .env.example documents."""

import re
import subprocess

import pytest
from deploykit.kit import REPO_DIR
from e2e.localstack import deploy_module
from ruamel.yaml import YAML

COMPOSE_FILES = ["docker-compose.dev.yml", "docker-compose.prod.yml"]
# Each server as the native stack starts it: its command, the one file holding its flags,
# and the files that start it natively (systemd units, the local stack's supervisord).
ENTRY_POINTS = {
    "gunicorn": (
        ["gunicorn", "-c", "deploy/gunicorn.conf.py"],
        "bin/gunicorn -c @/deploy/gunicorn.conf.py",
        ["deploy/systemd/gunicorn.service", "deploy/local/supervisord.conf.template"],
    ),
    "daphne": (
        ["python", "deploy/run_daphne.py", "--bind"],
        "bin/python @/deploy/run_daphne.py --bind ",
        ["deploy/systemd/daphne@.service", "deploy/local/supervisord.conf.template"],
    ),
}
# Variables of third-party images and libraries, not the app's.
IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD", "PGPASSWORD"}


def load(name):
    return YAML(typ="safe").load((REPO_DIR / name).read_text())


def test_compose_files_match_the_compose_spec():
    result = subprocess.run(
        [str(REPO_DIR / ".venv/bin/check-jsonschema"), "--builtin-schema",
         "vendor.compose-spec", *COMPOSE_FILES],
        cwd=REPO_DIR, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_runs_the_native_entry_points(name):
    services = load(name)["services"]
    for service, (command, native_command, native_files) in ENTRY_POINTS.items():
        assert services[service]["command"][: len(command)] == command
        # "@" stands for the checkout's directory, which each file names its own way.
        pattern = re.escape(native_command).replace("@", r"\S+")
        for native in native_files:
            assert re.search(pattern, (REPO_DIR / native).read_text()), native


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_uses_only_documented_variables(name):
    documented = set(re.findall(r"^([A-Z_]+)=", (REPO_DIR / ".env.example").read_text(), re.M))
    text = (REPO_DIR / name).read_text()
    interpolated = set(re.findall(r"\$\{([A-Z_]+)", text))
    app = load(name)["x-app"]
    # Production reads the settings from .env; development works without one.
    assert app.get("env_file") == (".env" if name == "docker-compose.prod.yml" else None)
    assert (set(app["environment"]) | interpolated) - IMAGE_VARIABLES <= documented


def test_production_compose_is_built_to_keep_running():
    compose = load("docker-compose.prod.yml")
    services = compose["services"]
    servers = ["postgres", "redis", "gunicorn", "daphne", "nginx"]
    assert all("healthcheck" in services[name] for name in servers)
    long_running = [n for n, s in services.items() if n != "migrate" and "profiles" not in s]
    assert all(services[name]["restart"] == "unless-stopped" for name in long_running)
    assert services["daphne"]["deploy"]["replicas"] >= 2
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "postgres-data" in compose["volumes"]
    assert services["gunicorn"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }


def seconds(duration):
    return int(duration.removesuffix("s"))


def test_stops_wait_for_what_the_servers_finish():
    """Docker kills a container stop_grace_period after asking it to stop (10 s by default):
    longer than gunicorn waits for requests in flight, and daphne for its consumers."""
    services = load("docker-compose.prod.yml")["services"]
    gunicorn_conf = (REPO_DIR / "deploy" / "gunicorn.conf.py").read_text()
    graceful = int(re.search(r"^graceful_timeout = (\d+)", gunicorn_conf, re.M)[1])
    assert seconds(services["gunicorn"]["stop_grace_period"]) > graceful
    daphne_grace = deploy_module("run_daphne").SHUTDOWN_GRACE_SECONDS
    for name in COMPOSE_FILES:
        assert seconds(load(name)["services"]["daphne"]["stop_grace_period"]) > daphne_grace


def test_the_database_password_never_goes_into_a_url():
    app = load("docker-compose.prod.yml")["x-app"]["environment"]
    name = "${PROJECT_NAME:-realtime}"  # user and database named after the project
    assert app["DATABASE_URL"] == f"postgres://{name}@postgres:5432/{name}"
    assert app["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_compose_nginx_gets_the_limits_and_the_whole_letsencrypt_directory():
    dockerfile = (REPO_DIR / "deploy" / "Dockerfile").read_text()
    assert "COPY deploy/nginx/container.conf /etc/nginx/nginx.conf" in dockerfile
    container_conf = (REPO_DIR / "deploy" / "nginx" / "container.conf").read_text()
    assert "include /srv/realtime/deploy/nginx/tuning.conf;" in container_conf
    nginx = load("docker-compose.prod.yml")["services"]["nginx"]
    assert "letsencrypt:/etc/letsencrypt:ro" in nginx["volumes"]


def test_the_image_runs_as_an_unprivileged_user():
    dockerfile = (REPO_DIR / "deploy" / "Dockerfile").read_text()
    app_stage = dockerfile.split(" AS app\n")[1].split("\nFROM ")[0]
    assert re.search(r"^USER realtime$", app_stage, re.M)
    assert "collectstatic" in dockerfile
