import asyncio
import contextlib
import json

import pytest
from e2e.localstack import TIMEOUT, LocalStack, free_port


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The real stack (nginx, gunicorn, daphne ×2, redis-server), shared by the e2e tests."""
    local = LocalStack(tmp_path_factory.mktemp("stack") / "var", free_port())
    local.up()
    try:
        yield local
    finally:
        local.down()


async def receive_json(ws, timeout=TIMEOUT):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def receive_until(ws, predicate, timeout=TIMEOUT):
    """The first frame matching ``predicate`` (skipping history or hello frames)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame


async def receive_until_quiet(ws, quiet=1.0):
    """Every frame until none arrives for ``quiet`` seconds (a replay, then silence)."""
    frames = []
    with contextlib.suppress(TimeoutError):
        while True:
            frames.append(await receive_json(ws, timeout=quiet))
    return frames


def bearer(token):
    """The handshake header of a client authenticating with an API token."""
    return {"Authorization": f"Bearer {token}"}
