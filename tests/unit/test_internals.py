"""The third-party internals the kit relies on are checked at start: present on the pinned
releases, and an upgrade that drops one stops with one line naming it."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from e2e.localstack import run_daphne

from realtime import catch_up, layer


def test_the_pinned_releases_have_every_internal_relied_on():
    run_daphne().check_internals()
    layer.check_internals()
    catch_up.check_internals()


def test_a_release_without_one_stops_the_launcher_with_one_line(monkeypatch):
    launcher = run_daphne()
    monkeypatch.setattr(launcher, "INTERNALS", [("daphne", launcher.WebRequest, "_gone_")])
    with pytest.raises(SystemExit) as stopped:
        launcher.check_internals()
    assert str(stopped.value).startswith("run_daphne: daphne 4.")
    assert "WebRequest._gone_" in str(stopped.value)


def test_a_layer_without_its_internals_refuses_to_start(monkeypatch):
    monkeypatch.delattr(layer.RedisPubSubLoopLayer, "_get_shard")
    with pytest.raises(ImproperlyConfigured, match="channels-redis 4"):
        layer.check_internals()
