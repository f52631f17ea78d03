"""deploy/README.md as the rehearsal reads it: its steps, each a list of shell blocks.

The rehearsal runs the guide's own text, not a copy of its commands: a block is what a
person pastes into a new shell, with only the values the guide tells them to fill in
(DOMAIN, the URL of their fork) replaced.
"""

import re
from dataclasses import dataclass
from pathlib import Path

FORK_URL = "https://github.com/YOUR/FORK.git"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass
class Step:
    title: str  # the heading, e.g. "1. Packages" or "Deploy new code"
    blocks: list  # the ```sh blocks under it, in order


def steps(guide_path):
    """{title: Step} of every ``##``/``###`` section with shell blocks, in the guide's order."""
    found = {}
    for section in re.split(r"^#{2,3} ", Path(guide_path).read_text(), flags=re.MULTILINE)[1:]:
        title, _, body = section.partition("\n")
        if blocks := BLOCK.findall(body):
            found[title.strip()] = Step(title.strip(), blocks)
    return found


def fill_in(block, domain, fork_url):
    """The block as the person deploying runs it: their domain, their fork."""
    return re.sub(r"\bDOMAIN\b", domain, block).replace(FORK_URL, fork_url)
