"""Fixtures shared by every kind of test."""

import pytest
from django.conf import settings
from e2e.localstack import free_port as _free_port

from tests.plugins.session_environment import start_postgres


@pytest.fixture
def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return _free_port()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's test database; on PostgreSQL, connections left open by threads that
    served async tests are ended before it is dropped (DROP DATABASE waits for no one)."""
    yield
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        start_postgres().psql(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname LIKE 'test\\_%' AND pid <> pg_backend_pid()",
        )
