"""Close codes the server sends, and what a client should do about each.

RFC 6455 §7.4 defines 1000-1015; 4000-4999 are free for applications. The application
codes mirror HTTP statuses, so clients can tell "fix your request" from "sign in".
"""

# Standard codes (RFC 6455 §7.4.1 and the IANA registry).
POLICY_VIOLATION = 1008  # e.g. flooding: reconnect later, more slowly
MESSAGE_TOO_BIG = 1009  # sent by daphne for frames over its limit (deploy/run_daphne.py)
INTERNAL_ERROR = 1011  # a server bug; the details are in the server's log, not on the wire
SERVICE_RESTART = 1012  # the server is restarting: reconnect (with ?since= to resume)
TRY_AGAIN_LATER = 1013  # a dependency (Redis) is down: reconnect with backoff

# Application codes.
BAD_REQUEST = 4400  # the URL or parameters are invalid; reconnecting the same way won't help
UNAUTHORIZED = 4401  # sign in (session or token) and reconnect
NOT_FOUND = 4404  # no websocket route at this path
TOO_MANY_CONNECTIONS = 4429  # a per-address or per-user socket cap: close another socket first
