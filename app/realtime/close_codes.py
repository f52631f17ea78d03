"""Application close codes (4000-4999 are free for applications, RFC 6455 §7.4.2).

They mirror HTTP statuses so clients can tell "fix your request" from "sign in".
"""

BAD_REQUEST = 4400  # the URL or parameters are invalid; reconnecting the same way won't help
UNAUTHORIZED = 4401  # sign in (session or ?token=) and reconnect
NOT_FOUND = 4404  # no websocket route at this path
