"""The container tests' engine, shared by every module here, and the figures they measure
(shown at the end of the run: build times, image sizes, the 502 window of a redeploy)."""

import os

import pytest
from containers.engine import running_engine
from containers.standins import build_standins, named_base_images
from deploykit.kit import REPO_DIR

_figures = []


@pytest.fixture(scope="session")
def engine():
    """dockerd for the session, with stand-ins for every base image the shipped files name;
    stopped at the end, with everything it ran, however the tests end."""
    if os.geteuid() != 0:
        pytest.fail("the container tests start dockerd and need root: run `sudo make test`")
    with running_engine() as engine:
        for name, how in build_standins(engine, named_base_images(REPO_DIR)).items():
            _figures.append(f"stand-in {name}: {how}")
        yield engine


@pytest.fixture(scope="session")
def figures():
    """``figures(line)`` records a measurement for the end of the run's report."""
    return _figures.append


def pytest_terminal_summary(terminalreporter):
    if _figures:
        terminalreporter.section("containers: what was measured")
        for line in _figures:
            terminalreporter.write_line(line)
