"""Hosts on one machine: a network namespace each, joined by a bridge (needs root).

Every run picks its own names (from its pid) and its own 10.77.N.0/24, so parallel runs
do not clash; leftovers of runs that died without tearing down are removed first.
The test process itself stays in the root namespace with the address .1 on the bridge:
it is the "internet" from which clients reach the hosts, like a load balancer would.
"""

import contextlib
import ipaddress
import os
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass

SUBNET_PREFIX = "10.77"
IFNAMSIZ = 15  # Linux interface names are at most 15 characters
# mh<pid in hex>-<host> namespaces, mh<pid in hex>br bridges (veths go with their netns)
LEFTOVER = re.compile(r"^mh([0-9a-f]+)(?:-\S+|br)$")


def ip(*args, check=True):
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=30, check=check
    ).stdout


@dataclass
class Host:
    """One "machine": a network namespace with one address on the shared network."""

    name: str  # e.g. "app-a", as the tests call it
    netns: str
    address: str

    def command(self, *args):
        """``args`` run inside this host."""
        return ["ip", "netns", "exec", self.netns, *map(str, args)]

    def pids(self):
        """Every process running inside this host."""
        return [int(pid) for pid in ip("netns", "pids", self.netns).split()]

    def crash(self, timeout=10):
        """Kill -9 every process on the host, as a power cut would.

        Again until none is left: a parent killed after its child (supervisord, the
        gunicorn master) may have forked a replacement in between.
        """
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            if time.monotonic() > deadline:
                raise TimeoutError(f"processes left on {self.name} after {timeout}s: {pids}")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def remove_leftovers():
    """Namespaces and bridges of runs whose process is gone, if nothing runs in them."""
    names = [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]
    names += [line.split()[0] for line in ip("-br", "link", "show", "type", "bridge").splitlines()]
    for name in names:
        match = LEFTOVER.match(name)
        if not match or _alive(int(match[1], 16)):
            continue
        if name.endswith("br"):
            ip("link", "del", name, check=False)
        elif not ip("netns", "pids", name, check=False).split():
            ip("netns", "del", name, check=False)


class Network:
    """A bridge in the root namespace and hosts plugged into it with veth pairs."""

    def __init__(self):
        remove_leftovers()
        self.run_id = f"{os.getpid():x}"
        self.bridge = f"mh{self.run_id}br"
        self.subnet = self._free_subnet()
        self.gateway = str(self.subnet.network_address + 1)
        self.hosts = {}
        self._links = []
        ip("link", "add", self.bridge, "type", "bridge")
        self._links.append(self.bridge)
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    @staticmethod
    def _free_subnet():
        used = ip("-4", "route", "show", "table", "all")
        candidates = [f"{SUBNET_PREFIX}.{n}.0/24" for n in range(256)]
        free = [subnet for subnet in candidates if f"{subnet[:-5]}." not in used]
        if not free:
            raise RuntimeError(f"no free /24 left in {SUBNET_PREFIX}.0.0/16")
        return ipaddress.ip_network(random.choice(free))

    def add_host(self, name):
        """A new namespace on the bridge, with the next address."""
        index = len(self.hosts) + 2
        host = Host(name, f"mh{self.run_id}-{name}", str(self.subnet.network_address + index))
        outside, inside = f"mh{self.run_id}h{index}", f"mh{self.run_id}n{index}"
        assert max(len(outside), len(inside)) <= IFNAMSIZ
        ip("netns", "add", host.netns)
        self.hosts[name] = host
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        self._links.append(outside)
        ip("link", "set", inside, "netns", host.netns)
        ip("link", "set", outside, "master", self.bridge, "up")
        ip(
            "-n",
            host.netns,
            "addr",
            "add",
            f"{host.address}/{self.subnet.prefixlen}",
            "dev",
            inside,
        )
        ip("-n", host.netns, "link", "set", inside, "up")
        ip("-n", host.netns, "link", "set", "lo", "up")
        return host

    def tear_down(self):
        """Kill whatever still runs in the hosts, then remove namespaces, veths and bridge."""
        for host in self.hosts.values():
            with contextlib.suppress(TimeoutError):  # remove the namespace all the same
                host.crash()
            ip("netns", "del", host.netns, check=False)
        for link in reversed(self._links):
            ip("link", "del", link, check=False)
