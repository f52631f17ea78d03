"""docs/adopt.md, word for word, on a project that already exists: a fresh
`django-admin startproject mysite` with a consumer of its own (the `clock` app), the kit
added as the guide says, the native stack run on it, that consumer's websocket opened
through nginx.

Every shell block of the guide runs in a new shell, in the project's repository, with
TEMPLATE replaced by this checkout; the stack's port is a free one (the guide's 8080 may be
taken on this machine), given through the environment, which wins over .env.
"""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from e2e.localstack import REPO_DIR, free_port
from rehearsal.guide import steps
from websockets.asyncio.client import connect

from tests.plugins.session_environment import users_environment

GUIDE = REPO_DIR / "docs" / "adopt.md"
CLOCK = '''"""The project's own consumer: the time on connect, an echo of what it is sent."""

from datetime import UTC, datetime

from realtime.consumers import JsonTextConsumer


class ClockConsumer(JsonTextConsumer):
    async def connect(self):
        await self.accept()
        await self.send_json({"now": datetime.now(UTC).isoformat()})

    async def receive_json(self, content):
        await self.send_json({"tick": content})
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A repository holding an existing project: mysite/, with an app of its own."""
    repository = tmp_path_factory.mktemp("adopt")
    django_admin = Path(sys.executable).parent / "django-admin"
    subprocess.run([str(django_admin), "startproject", "mysite"], cwd=repository, check=True)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "startapp", "clock"], cwd=repository / "mysite", check=True)
    (repository / "mysite" / "clock" / "consumers.py").write_text(CLOCK)
    return repository


def shell(block, repository, environment, timeout=600):
    result = subprocess.run(
        ["bash", "-ec", block.replace("TEMPLATE", str(REPO_DIR))], cwd=repository,
        env=environment, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
    return result.stdout


async def clock_through_nginx(port):
    async with connect(f"ws://127.0.0.1:{port}/ws/clock/", origin=f"http://127.0.0.1:{port}",
                       open_timeout=10) as ws:  # fmt: skip
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send(json.dumps({"hello": "clock"}))
        second = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return first, second


def test_the_guide_adds_the_kit_and_the_projects_consumer_answers_through_nginx(project):
    port = free_port()
    environment = {
        **users_environment(),
        "PUBLIC_PORT": str(port),
        "PUBLIC_ORIGINS": f"http://127.0.0.1:{port}",
    }
    blocks = [block for step in steps(GUIDE).values() for block in step.blocks]
    *install, down = blocks
    assert "stack.py up" in install[-1] and "stack.py down" in down
    try:
        for block in install:
            shell(block, project, environment)
        first, second = asyncio.run(clock_through_nginx(port))
        assert "now" in first and second == {"tick": {"hello": "clock"}}
        # The kit's own endpoints came along: health through gunicorn, echo through daphne.
        smoke = subprocess.run(
            [sys.executable, str(project / "deploy" / "smoke.py"), f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert "PASS healthz" in smoke.stdout and "PASS echo" in smoke.stdout, smoke.stdout
    finally:
        output = shell(down, project, environment)
    assert "nothing left running" in output
