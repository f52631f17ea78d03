"""The system checks for the channel-layer pitfalls (realtime.checks)."""

import pytest
from django.core import checks

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def findings(deploy=False):
    return {
        message.id
        for message in checks.run_checks(tags=["channels"], include_deployment_checks=deploy)
    }


def test_the_projects_layer_passes_every_check():
    assert findings(deploy=True) == set()


@pytest.mark.parametrize(
    "layers",
    [{}, {"other": IN_MEMORY["default"]}, {"default": {"BACKEND": "no.such.Layer"}}],
    ids=["empty", "no default", "unimportable"],
)
def test_a_missing_or_broken_layer_is_an_error(settings, layers):
    settings.CHANNEL_LAYERS = layers
    assert findings() == {"realtime.E001"}


def test_no_channel_layers_setting_at_all_is_an_error(settings):
    del settings.CHANNEL_LAYERS
    assert findings() == {"realtime.E001"}


def test_in_memory_layer_is_an_error_under_check_deploy(settings):
    settings.CHANNEL_LAYERS = IN_MEMORY
    assert findings() == set()  # fine for a single-process experiment
    assert findings(deploy=True) == {"realtime.E002"}


def test_unreachable_redis_is_a_warning(unreachable_redis):
    messages = checks.run_checks(tags=["channels"])
    assert [(m.id, m.level) for m in messages] == [("realtime.W001", checks.WARNING)]
    assert "nonexistent" in messages[0].msg
