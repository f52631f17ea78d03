"""The channel layer joins separate OS processes through a real Redis (no in-memory layer)."""

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from channels.layers import get_channel_layer

PEER = str(Path(__file__).with_name("layer_peer.py"))
TIMEOUT = 15


async def test_a_group_message_from_another_process_arrives():
    layer = get_channel_layer()
    group = f"it-{uuid.uuid4().hex}"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    peer = await asyncio.create_subprocess_exec(sys.executable, PEER, "send", group)
    try:
        message = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
    finally:
        await asyncio.wait_for(peer.wait(), TIMEOUT)
    assert message["type"] == "peer.message"
    assert message["pid"] == peer.pid != os.getpid()


async def test_a_group_message_to_another_process_arrives():
    group = f"it-{uuid.uuid4().hex}"
    peer = await asyncio.create_subprocess_exec(
        sys.executable, PEER, "receive", group, stdout=subprocess.PIPE
    )
    try:
        ready = await asyncio.wait_for(peer.stdout.readline(), TIMEOUT)
        assert ready.strip() == b"READY"
        await get_channel_layer().group_send(group, {"type": "peer.message", "pid": os.getpid()})
        received = await asyncio.wait_for(peer.stdout.readline(), TIMEOUT)
    finally:
        if peer.returncode is None:
            peer.kill()
        await peer.wait()
    assert f'"pid": {os.getpid()}' in received.decode()
