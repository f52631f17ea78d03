"""Fixtures shared by every kind of test."""

import pytest
from e2e.localstack import free_port as _free_port


@pytest.fixture
def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return _free_port()
