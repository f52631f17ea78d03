"""The rehearsal cluster: two app hosts, the layer tier and a database host, each a
network namespace.

    app-a 10.77.N.2 ─┐                      ┌─ redis-a 10.77.N.4  redis primary + sentinel
    app-b 10.77.N.3 ─┼─ bridge (test: .1) ──┼─ redis-b 10.77.N.5  redis replica + sentinel
                     │                      ├─ sentinel-c 10.77.N.6  sentinel
                     │                      └─ db 10.77.N.7  PostgreSQL
Each app host runs the whole local stack (nginx, gunicorn, daphne ×2 under supervisord,
deploy/local/stack.py) on its own address, with the layer pointed at the Sentinels and the
database at the PostgreSQL server on the db host, over the network with a password, as
app hosts share PostgreSQL in production.
"""

import os
import shutil
from dataclasses import dataclass

import pytest
from e2e.localstack import LocalStack
from multihost.network import Host, Network
from multihost.redis_tier import RedisTier
from postgres import PostgresServer

APP_PORT = 8080  # every host has its own ports: the same one on each, as on real servers


@dataclass
class Cluster:
    network: Network
    tier: RedisTier
    hosts: dict  # name → Host
    stacks: dict  # app host name → LocalStack

    def host(self, name) -> Host:
        return self.hosts[name]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the multi-host rehearsal creates network namespaces: run it as root")
    if not shutil.which("ip", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"):
        pytest.fail("the multi-host rehearsal needs `ip`: apt-get install iproute2")
    directory = tmp_path_factory.mktemp("multihost")
    network = Network()
    tier = database = None
    stacks = {}
    try:
        hosts = {
            name: network.add_host(name)
            for name in ("app-a", "app-b", "redis-a", "redis-b", "sentinel-c", "db")
        }
        database = PostgresServer(hosts["db"].address, hosts["db"].command()).start()
        tier = RedisTier(
            directory / "layer",
            primary=hosts["redis-a"],
            replica=hosts["redis-b"],
            sentinel_hosts=[hosts["redis-a"], hosts["redis-b"], hosts["sentinel-c"]],
        )
        tier.start()
        app_hosts = [hosts["app-a"], hosts["app-b"]]
        common = {
            **tier.settings,
            "DATABASE_URL": database.create_app_database("realtime"),
            "ALLOWED_HOSTS": ",".join(host.address for host in app_hosts),
            "DAPHNE_INSTANCES": "2",
            "GUNICORN_WORKERS": "2",
        }
        for host in app_hosts:
            stack = LocalStack(
                directory / host.name / "var",
                APP_PORT,
                address=host.address,
                host_command=host.command(),
                **common,
            )
            stack.up()
            stacks[host.name] = stack
        yield Cluster(network, tier, hosts, stacks)
    finally:
        for stack in stacks.values():
            stack.down()
        if tier is not None:
            tier.stop()
        if database is not None:
            database.stop()
        network.tear_down()
