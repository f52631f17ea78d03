"""A second OS process for the cross-process tests, using the project's channel layer.

python layer_peer.py send GROUP      # group_send one message, then exit
python layer_peer.py receive GROUP   # join GROUP, print READY, print the first message
"""

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "app"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from channels.layers import get_channel_layer  # noqa: E402

TIMEOUT = 10


async def send(group):
    await get_channel_layer().group_send(group, {"type": "peer.message", "pid": os.getpid()})


async def receive(group):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    print("READY", flush=True)
    message = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
    print(json.dumps(message), flush=True)


if __name__ == "__main__":
    action, group = sys.argv[1:3]
    asyncio.run({"send": send, "receive": receive}[action](group))
