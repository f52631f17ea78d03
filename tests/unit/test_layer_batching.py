"""Batched subscriptions (realtime.layer.subscription_commands) have the effect of the
same calls made one by one, in order, in the fewest commands."""

from realtime.layer import subscription_commands


def batch(*calls):
    return [(command, channel, None) for command, channel in calls]


def test_subscribes_in_a_row_share_one_command_and_repeats_send_nothing():
    calls = batch(("SUBSCRIBE", "a"), ("SUBSCRIBE", "b"), ("SUBSCRIBE", "a"), ("SUBSCRIBE", "g"))
    assert subscription_commands(calls, subscribed={"g"}) == [("SUBSCRIBE", ["a", "b"])]


def test_order_between_kinds_is_kept():
    calls = batch(("SUBSCRIBE", "a"), ("UNSUBSCRIBE", "a"), ("SUBSCRIBE", "a"),
                  ("UNSUBSCRIBE", "b"))  # fmt: skip
    assert subscription_commands(calls, subscribed={"b"}) == [
        ("SUBSCRIBE", ["a"]),
        ("UNSUBSCRIBE", ["a"]),
        ("SUBSCRIBE", ["a"]),
        ("UNSUBSCRIBE", ["b"]),
    ]


def test_leaving_what_was_never_joined_sends_nothing():
    assert subscription_commands(batch(("UNSUBSCRIBE", "x")), subscribed=set()) == []
