"""The load rig at a reduced size, in `make test`: the same events and the same promises
(nothing lost, nothing shown twice, every member back) as `make load` at full size."""

import pytest
from load.rig import LoadRig, Plan, table
from load.soak import soak

SMALL = Plan(sockets=500, rooms=5, feed_users=20, chat_rate=25, push_rate=10,
             client_processes=2, connect_rate=200)  # fmt: skip


@pytest.fixture(scope="module")
def phases(tmp_path_factory, postgres_server):
    with LoadRig(tmp_path_factory.mktemp("load"), SMALL, postgres_server) as rig:
        phases = rig.run()
    print("\n" + table(phases))
    return {phase.event: phase for phase in phases}


@pytest.mark.parametrize("event", [
    "rolling restart of every daphne", "gunicorn reload (HUP)", "nginx reload (HUP)",
    "kill -9 of one daphne", "Redis restart", "PostgreSQL restart",
])  # fmt: skip
def test_nothing_is_lost_or_shown_twice_and_everyone_is_back(phases, event):
    phase = phases[event]
    assert phase.lost == 0
    assert phase.shown_twice == 0 and phase.out_of_order == 0
    assert phase.posts > 0 and phase.pushes > 0
    if phase.dropped:
        assert len(phase.back) == phase.dropped  # every dropped member came back


def test_churn_with_group_traffic_leaves_no_subscription_behind(tmp_path, postgres_server):
    """Waves of members open, hear chat and pushes, and close: Redis ends with no channel
    subscribed, no key, as before the first wave (channels_redis#276: see realtime/layer.py)."""
    plan = Plan(sockets=300, rooms=5, feed_users=20, chat_rate=25, push_rate=10,
                client_processes=2, connect_rate=200, events=[])  # fmt: skip
    with LoadRig(tmp_path, plan, postgres_server) as rig:
        baseline, samples = soak(rig, waves=3)
    assert [(s["channels"], s["keys"]) for s in samples] == [
        (baseline["channels"], baseline["keys"])
    ] * 3
