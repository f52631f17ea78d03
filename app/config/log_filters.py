"""Logging filters the settings' LOGGING refers to."""

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """Log a client's mistake as one WARNING line, without a traceback.

    Django logs a request for a host name outside ALLOWED_HOSTS at ERROR with the
    DisallowedHost traceback: scanners send such requests all day, and each would fill a
    screen of the log and look like a server bug.
    """

    def filter(self, record):
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
