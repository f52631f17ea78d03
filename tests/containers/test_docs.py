"""The README's "Containers" section gives the commands docs/containers.md gives, which the
other modules here run: what a reader copies is what is tested."""

import re

from containers.compose import doc_blocks, doc_section
from deploykit.kit import REPO_DIR


def readme_commands():
    readme = (REPO_DIR / "README.md").read_text()
    section = readme.split("\n## Containers\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)[1]
    return [line.split("#")[0].strip() for line in block.splitlines()]


def test_the_readme_gives_the_documented_commands():
    development = doc_blocks("Development: `docker-compose.dev.yml`", "sh")[0].strip()
    production = doc_blocks("2. Start", "sh")[0].strip()
    assert readme_commands() == [development, production]


def test_the_docs_say_what_compose_v2_users_do_differently():
    differences = doc_section("Compose v2 and Compose 1.29")
    assert "`docker compose`" in differences and "`docker-compose`" in differences
    assert "deploy.replicas" in differences
