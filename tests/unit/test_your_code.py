"""The README's "Your own code" example, run as written: its two files, pasted into an app,
with the routes it names; a goal POSTed to the view reaches a scoreboard's socket."""

import re
import sys
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import RequestFactory
from django.urls import path
from unit.conftest import TIMEOUT

REPO_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def scores_app(tmp_path, monkeypatch):
    """The README's files, where its first lines say they go (app/scores/...)."""
    readme = (REPO_DIR / "README.md").read_text()
    section = readme.split("\n## Your own code\n", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        where = re.match(r"# app/(scores/\w+\.py)\n", block)[1]
        (tmp_path / where).parent.mkdir(exist_ok=True)
        (tmp_path / where).write_text(block)
    (tmp_path / "scores" / "__init__.py").touch()
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m == "scores" or m.startswith("scores.")]:
        del sys.modules[name]


@pytest.mark.django_db(transaction=True)
async def test_a_goal_posted_to_the_view_reaches_every_scoreboard(scores_app):
    from scores.consumers import ScoreConsumer
    from scores.views import goal

    routes = URLRouter([path("ws/scores/", ScoreConsumer.as_asgi())])
    boards = [WebsocketCommunicator(routes, "/ws/scores/") for _ in range(2)]
    for board in boards:
        assert (await board.connect(timeout=TIMEOUT))[0]
    request = RequestFactory().post("/goal/home/")
    response = await database_sync_to_async(goal)(request, "home")
    assert response.status_code == 202
    for board in boards:
        assert await board.receive_json_from(timeout=TIMEOUT) == {"goal": "home"}
        await board.disconnect()
