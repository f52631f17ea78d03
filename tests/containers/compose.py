"""A compose project in a fresh checkout, driven by the commands docs/containers.md gives.

The docs speak Compose v2 (`docker compose`); the engine here has Compose 1.29
(`docker-compose`), whose `--build` would build on the engine's default network, which has
no way out on the test engine. So a documented command runs as written except for those
two words: `docker-compose`, and with `--build`, the images its compose file names built
first on the host's network (same Dockerfile, targets and tags), then `--no-build`.
"""

import re
import time
from pathlib import Path

from containers.engine import COMPOSE
from ruamel.yaml import YAML

DOCS = Path(__file__).resolve().parents[2] / "docs" / "containers.md"
BUILD_TIMEOUT = 1200
COMMAND_TIMEOUT = 600


def doc_section(title):
    """The text under the heading ``title`` (any level) of docs/containers.md, up to the
    next heading of the same or a higher level."""
    text = DOCS.read_text()
    heading = re.search(rf"^(#+) {re.escape(title)}$", text, re.M)
    assert heading, f"docs/containers.md has no section {title!r}"
    rest = text[heading.end() :]
    end = re.search(rf"^#{{1,{len(heading[1])}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def doc_blocks(title, language):
    """The fenced code blocks of ``language`` in the section ``title``."""
    return re.findall(rf"^```{language}\n(.*?)^```", doc_section(title), re.M | re.S)


class ComposeProject:
    """One compose file of a checkout on the test engine; the project is named after the
    checkout's directory, as `docker compose` names it by default."""

    def __init__(self, engine, directory, compose_file, env=None):
        self.engine = engine
        self.directory = Path(directory)
        self.file = compose_file
        self.env = dict(env or {})
        self.name = re.sub(r"[^a-z0-9]", "", self.directory.name.lower())
        self.build_seconds = {}
        self.build_output = {}

    # -- what the docs say ---------------------------------------------------------------

    def run_documented(self, script, env=None, timeout=COMMAND_TIMEOUT, check=True):
        """A shell block of the docs, in the checkout, with Compose 1.29 (see the module)."""
        if re.search(r"docker compose .*--build", script):
            self.build_images(env)
            script = re.sub(r"(docker compose .*)--build", r"\1--no-build", script)
        script = script.replace("docker compose ", f"{COMPOSE} ")
        return self.engine.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=self.directory,
            env={**self.env, **(env or {})}, timeout=timeout, check=check,
        )  # fmt: skip

    def build_images(self, env=None):
        """Every image the compose file builds, as its `build:` sections say (with the
        variables filled in from .env and ``env``, as compose does), timed."""
        services = YAML(typ="safe").load(self.compose("config", env=env).stdout)["services"]
        built = {}
        for service in services.values():
            if "build" not in service or service["image"] in built:
                continue
            build = service["build"]
            started = time.monotonic()
            result = self.engine.docker(
                "build", "--network", "host", "-f", build["dockerfile"],
                "--target", build["target"], "-t", service["image"], build["context"],
                cwd=self.directory, timeout=BUILD_TIMEOUT,
            )  # fmt: skip
            built[service["image"]] = time.monotonic() - started
            self.build_output[service["image"]] = result.stdout
        self.build_seconds = built
        return built

    # -- looking at it -------------------------------------------------------------------

    def compose(self, *args, timeout=COMMAND_TIMEOUT, check=True, env=None):
        return self.engine.run(
            [COMPOSE, "-f", self.file, *args], cwd=self.directory,
            env={**self.env, **(env or {})}, timeout=timeout, check=check,
        )  # fmt: skip

    def container_ids(self, service):
        return self.compose("ps", "-q", service).stdout.split()

    def containers(self, service):
        """docker inspect of each container of ``service``, oldest replica first."""
        ids = self.container_ids(service)
        found = self.engine.inspect(*ids) if ids else []
        return sorted(found, key=lambda c: c["Name"])

    def exec(self, service, command, index=1, check=True, timeout=COMMAND_TIMEOUT):
        """A command in a running container of ``service`` (``command``: a shell line)."""
        return self.compose(
            "exec", "-T", "--index", str(index), service, "sh", "-c", command,
            check=check, timeout=timeout,
        )  # fmt: skip

    def logs(self, service):
        return self.compose("logs", "--no-color", service).stdout

    def down(self):
        """Everything the project made, its volumes included, gone."""
        return self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)
