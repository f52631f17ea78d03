"""Sign-in throttling (accounts.sign_in): failed sign-ins counted per user name and per
address in Redis; past either limit, the page answers 429 without checking the password."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 3, 5


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("carol", password=PASSWORD, is_staff=True)


def attempt(path, username, password, address="192.0.2.1"):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_a_user_name_is_refused_after_its_failures_even_with_the_right_password(staff, path):
    assert [attempt(path, "carol", "wrong").status_code for _ in range(3)] == [200] * 3
    refused = attempt(path, "carol", PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 300  # one more try every 900 s / 3
    assert b"Too many failed sign-ins" in refused.content
    assert attempt(path, "CAROL", PASSWORD, address="192.0.2.2").status_code == 429
    get_user_model().objects.create_user("dave", password=PASSWORD, is_staff=True)
    assert attempt(path, "dave", PASSWORD).status_code == 302


def test_an_address_is_refused_after_its_failures_whatever_the_user_name(staff):
    statuses = [attempt("/login/", f"guess{n}", "wrong").status_code for n in range(5)]
    assert statuses == [200] * 5
    assert attempt("/login/", "carol", PASSWORD).status_code == 429
    assert attempt("/login/", "carol", PASSWORD, address="192.0.2.9").status_code == 302


def test_successful_sign_ins_are_not_counted(staff):
    assert [attempt("/login/", "carol", PASSWORD).status_code for _ in range(6)] == [302] * 6


def test_zero_turns_the_limits_off(staff, settings):
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 0, 0
    assert {attempt("/login/", "carol", "wrong").status_code for _ in range(8)} == {200}
