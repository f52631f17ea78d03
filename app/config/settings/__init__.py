"""Settings by environment: ``local`` for the local stack and tests, ``production`` for servers.

Both start from ``base``, which reads every value from the environment (and ``.env``).
"""
