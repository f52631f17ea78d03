"""The images docker-compose.prod.yml builds, looked at as a reviewer would: who they run as,
every file in them, the Python packages in the app image, their sizes.

They are built from a fresh copy of the repository to which a developer's usual clutter is
added (.env with a secret, .venv, var/, .git, bytecode): none of it may reach an image.
"""

import re
import subprocess
import tarfile

import pytest
from containers.compose import ComposeProject
from containers.engine import DOCKER
from containers.standins import STANDINS, named_base_images
from deploykit.kit import REPO_DIR, copy_checkout

APP, NGINX = "realtime-app", "realtime-nginx"  # PROJECT_NAME-app, PROJECT_NAME-nginx
SECRET = "developer-secret-never-in-an-image"
CLUTTER = [".env", ".venv/bin/python", "var/db.sqlite3", ".git/HEAD", "app/web/__pycache__/x.pyc"]
# Whatever of the checkout must stay out: the developer's settings, virtualenv, state, tests.
PRIVATE = re.compile(r"^srv/realtime/(\.env$|\.venv/|var/|tests/|docs/|\.git/|.*__pycache__/)")


@pytest.fixture(scope="module")
def engine_with_images(engine, tmp_path_factory, figures):
    checkout = copy_checkout(tmp_path_factory.mktemp("images") / "realtime")
    for name in CLUTTER:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(f"SECRET_KEY={SECRET}\n")
    # Compose refuses to read the file without the variables it marks required.
    required = {"POSTGRES_PASSWORD": "unused", "DOMAIN": "unused.example"}
    ComposeProject(engine, checkout, "docker-compose.prod.yml").build_images(required)
    for image in (APP, NGINX):
        size = engine.inspect(image)[0]["Size"]
        figures(f"image {image}: {size / 1e6:.0f} MB")
    return engine


def members(engine, image):
    """Every entry of the image's file system, from `docker export` of a container of it."""
    container = engine.docker("create", image).stdout.strip()
    try:
        export = subprocess.Popen(
            [DOCKER, "export", container], env=engine.env, stdout=subprocess.PIPE
        )
        with tarfile.open(fileobj=export.stdout, mode="r|") as archive:
            entries = list(archive)
        export.wait(120)
    finally:
        engine.docker("rm", container)
    return entries


def run(engine, image, *command, user=None):
    options = ["--user", user] if user else []
    return engine.docker("run", "--rm", *options, "--entrypoint", command[0], image, *command[1:])


def test_every_base_image_the_files_name_has_a_stand_in():
    assert named_base_images(REPO_DIR) == set(STANDINS)


def test_the_app_image_runs_as_an_unprivileged_user_who_cannot_change_the_code(engine_with_images):
    engine = engine_with_images
    assert engine.inspect(APP)[0]["Config"]["User"] == "realtime"
    assert run(engine, APP, "id", "-un").stdout.strip() == "realtime"
    assert run(engine, APP, "id", "-u").stdout.strip() != "0"
    code = [m for m in members(engine, APP) if re.match(r"^(srv/realtime|opt/venv)/", m.name)]
    assert code and all(m.uid == 0 for m in code)  # root's: read-only to the app


@pytest.mark.parametrize("image", [APP, NGINX])
def test_nothing_of_the_developers_checkout_is_in_the_image(engine_with_images, image, figures):
    entries = members(engine_with_images, image)
    names = [entry.name for entry in entries]
    project_files = {name.split("/")[2] for name in names if name.startswith("srv/realtime/")}
    figures(f"image {image}: {len(names)} files; /srv/realtime: {sorted(project_files)}")
    assert [name for name in names if PRIVATE.match(name)] == []
    assert not [name for name in names if name.rsplit("/", 1)[-1] == ".env"]
    assert any(name.startswith("srv/realtime/") for name in names)


def test_the_app_image_has_the_production_requirements_and_nothing_else(engine_with_images):
    installed = run(engine_with_images, APP, "pip", "freeze").stdout.split()
    pinned = [
        line.split(";")[0].strip()
        for line in (REPO_DIR / "app/requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]

    def normal(requirement):
        return re.sub(r"[-_.]+", "-", requirement.lower())

    assert {normal(r) for r in installed} == {normal(r) for r in pinned}
    names = {normal(r.split("==")[0]) for r in installed}
    assert not names & {"supervisor", "pytest", "ruff", "playwright", "pytest-django"}


def test_the_app_image_has_the_smoke_test_and_the_launchers(engine_with_images):
    smoke = run(engine_with_images, APP, "python", "deploy/smoke.py", "--help")
    assert "--resolve" in smoke.stdout
    for launcher in ("deploy/gunicorn.conf.py", "deploy/run_daphne.py", "deploy/healthcheck.py"):
        run(engine_with_images, APP, "test", "-f", launcher)
