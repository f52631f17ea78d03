"""Waiting for real processes: poll until something holds, bounded, never a fixed sleep.

One loop for every "until it is ready / back / promoted" wait in the tests, so that each
wait is bounded the same way and a timeout says what was awaited and the last error seen.
A probe that knows the wait is hopeless (its process exited) raises, and that ends it.
"""

import asyncio
import time

INTERVAL = 0.1


def wait_until(probe, what, timeout, *, retry_on=(), interval=INTERVAL):
    """Call ``probe()`` until it returns something truthy, and return that.

    Exceptions of the types in ``retry_on`` count as "not yet"; any other ends the wait.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            if result := probe():
                return result
        except retry_on as error:
            last_error = error
        if time.monotonic() > deadline:
            raise TimeoutError(_timed_out(what, timeout, last_error))
        time.sleep(interval)


async def wait_until_async(probe, what, timeout, *, retry_on=(), interval=INTERVAL):
    """:func:`wait_until` for an async ``probe``."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            if result := await probe():
                return result
        except retry_on as error:
            last_error = error
        if time.monotonic() > deadline:
            raise TimeoutError(_timed_out(what, timeout, last_error))
        await asyncio.sleep(interval)


def _timed_out(what, timeout, last_error):
    message = f"timed out after {timeout} s waiting for {what}"
    return f"{message} (last error: {last_error!r})" if last_error else message
