"""docker-compose.dev.yml from a fresh copy of the repository, no .env, following
docs/containers.md ("Development"): the page, the demo users, gunicorn reloading an edited
Python file, the smoke test. On a free port through PUBLIC_PORT, as the docs offer, so a
`make up` on 8080 cannot collide with it."""

import re
import time
import urllib.error
import urllib.request
import uuid

import pytest
from containers.compose import ComposeProject, doc_blocks, doc_section
from containers.site import SMOKE_CHECKS
from deploykit.kit import REPO_DIR, copy_checkout
from e2e.localstack import free_port, sign_in
from polling import wait_until

SECTION = "Development: `docker-compose.dev.yml`"
START_TIMEOUT = 180
RELOAD_TIMEOUT = 60


@pytest.fixture(scope="module")
def dev(engine, tmp_path_factory, figures):
    checkout = copy_checkout(tmp_path_factory.mktemp("dev") / "realtime")
    assert not (checkout / ".env").exists()
    port = free_port()
    project = ComposeProject(engine, checkout, "docker-compose.dev.yml", {"PUBLIC_PORT": str(port)})
    try:
        start, _ = doc_blocks(SECTION, "sh")
        started = time.monotonic()
        project.run_documented(start, timeout=START_TIMEOUT * 5)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: get(f"{url}/healthz")[0] == 200, "/healthz through nginx",
                   START_TIMEOUT, retry_on=OSError)  # fmt: skip
        figures(f"development: built and up in {time.monotonic() - started:.1f} s")
        yield project, url
    finally:
        project.down()


def get(url, cookies=None):
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
    request = urllib.request.Request(url, headers=headers)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_the_page_and_the_demo_users_with_no_env_file(dev):
    project, url = dev
    assert "http://127.0.0.1:8080" in doc_section(SECTION)
    status, _, headers = get(f"{url}/")
    assert (status, headers["Location"]) == (302, "/login/?next=/")
    assert "Sign in as alice or bob, password demo-password" in project.logs("migrate")
    for user in ("alice", "bob"):
        cookies = sign_in(url, user, "demo-password", "/login/")
        status, page, _ = get(f"{url}/", cookies)
        assert status == 200
        assert re.search(rf'id="username"[^>]*>{user}<', page)


def test_an_edited_python_file_reloads_gunicorn(dev):
    project, url = dev
    nonce = uuid.uuid4().hex
    urls = project.directory / "app" / "config" / "urls.py"
    urls.write_text(
        urls.read_text()
        + "\nfrom django.http import HttpResponse  # noqa: E402\n\n"
        + f'urlpatterns.append(path("reloaded/", lambda request: HttpResponse("{nonce}")))\n'
    )
    # gunicorn's reloader polls each loaded module's mtime every second, from its first look
    # at it: a worker that imported urls.py less than a second before the edit takes the new
    # mtime as its starting point. So the file is saved again (as an editor does) until a
    # worker reloads; then the new code is what is served.

    def reloaded():
        if "Worker reloading: /srv/realtime/app/config/urls.py modified" in project.logs(
            "gunicorn"
        ):
            return True
        urls.touch()
        return False

    try:
        wait_until(reloaded, "gunicorn to reload", RELOAD_TIMEOUT, interval=1)
    except TimeoutError as error:
        raise AssertionError(project.logs("gunicorn")[-5000:]) from error
    wait_until(lambda: get(f"{url}/reloaded/")[:2] == (200, nonce), "the edited code to be served",
               RELOAD_TIMEOUT, retry_on=OSError)  # fmt: skip


def test_the_documented_smoke_test_passes(dev):
    project, url = dev
    _, smoke = doc_blocks(SECTION, "sh")
    result = project.run_documented(
        smoke.replace("http://127.0.0.1:8080", url),
        env={"PATH": f"{REPO_DIR / '.venv/bin'}:/usr/bin:/bin"},
    )
    assert re.findall(r"^PASS\s+(\w+)", result.stdout, re.M) == SMOKE_CHECKS
