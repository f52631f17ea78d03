#!/usr/bin/env python
"""Prove a deployment works, through its nginx, with real websockets.

    python deploy/smoke.py https://chat.example.com --token <api token>
    python deploy/smoke.py https://chat.example.com --resolve chat.example.com:443:203.0.113.7

Checks, each bounded by --timeout and reported as one PASS/FAIL line:
  healthz       GET /healthz answers 200 with every check "ok" (gunicorn, database, Redis)
  echo          /ws/echo/ says hello and echoes a message (daphne)
  chat          two sockets in one room both receive a message one of them sent (the room
                "_smoke": names starting with "_" stay out of the page's room list), as
                the token's user when given (production refuses anonymous chat)
  push          (with --token) POST /api/notifications/ to gunicorn arrives on the user's
                /ws/notifications/ socket in daphne: the cross-process path through Redis
  ticket        (with --token) a ticket from POST /api/ws-ticket/ (gunicorn, stored in
                Redis) opens one /ws/notifications/ socket (daphne), and only one
Exits 0 only if every check passed. Needs only Python 3.10+ and the `websockets` package.
--resolve, as curl's, connects to another address than DNS gives for the site (a new server
before the name points at it, one of several behind a load balancer); the certificate is
still checked against the site's name.
"""

import argparse
import asyncio
import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

# demo: begin
# One unlisted room for every run (chat.events.UNLISTED_PREFIX): users never see it.
SMOKE_ROOM = "_smoke"
# demo: end


class CheckFailed(Exception):
    pass


class Smoke:
    def __init__(self, base_url, token=None, timeout=10.0, cafile=None):
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https"):
            raise SystemExit(f"smoke: URL must start with http:// or https://, got {base_url!r}")
        self.http_url = f"{parts.scheme}://{parts.netloc}"
        self.ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
        self.origin = self.http_url  # what a browser on the site would send
        self.token = token
        self.timeout = timeout
        self.ssl = ssl.create_default_context(cafile=cafile) if parts.scheme == "https" else None

    # -- helpers -------------------------------------------------------------------------

    def http(self, method, path, body=None, headers=None):
        request = urllib.request.Request(
            self.http_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.ssl
            ) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:300].decode(errors="replace")

    def websocket(self, path, headers=None, subprotocols=None):
        return connect(
            self.ws_url + path,
            origin=self.origin,
            additional_headers=headers,
            subprotocols=subprotocols,
            ssl=self.ssl,
            open_timeout=self.timeout,
            close_timeout=2,
        )

    async def receive(self, ws, predicate, what):
        """The first JSON frame matching ``predicate``, skipping others (history, hello);
        an error frame the predicate does not expect fails the check with its reason."""
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    frame = json.loads(await ws.recv())
                    if predicate(frame):
                        return frame
                    if "error" in frame:
                        raise CheckFailed(f"the server answered: {frame['error']}")
        except TimeoutError:
            raise CheckFailed(f"no {what} within {self.timeout:g} s") from None

    # -- checks --------------------------------------------------------------------------

    async def check_healthz(self):
        status, body = await asyncio.to_thread(self.http, "GET", "/healthz")
        if status != 200 or body.get("status") != "ok":
            raise CheckFailed(f"HTTP {status}: {body}")
        return f"checks {body['checks']}"

    async def check_echo(self):
        async with self.websocket("/ws/echo/") as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), self.timeout))
            if hello != {"hello": "world"}:
                raise CheckFailed(f"expected hello, got {hello}")
            nonce = uuid.uuid4().hex
            await ws.send(json.dumps({"smoke": nonce}))
            await self.receive(ws, lambda f: f == {"echo": {"smoke": nonce}}, "echo")
        return "hello + echo"

    # demo: begin
    async def check_chat(self):
        text = f"smoke test {uuid.uuid4().hex}"
        is_ours = lambda f: f.get("type") == "chat.message" and f.get("message") == text  # noqa: E731
        # Signed in with the token when there is one: production refuses anonymous chat.
        signed_in = self.bearer if self.token else None
        async with (
            self.websocket(f"/ws/chat/{SMOKE_ROOM}/", signed_in) as alice,
            self.websocket(f"/ws/chat/{SMOKE_ROOM}/", signed_in) as bob,
        ):
            await alice.send(json.dumps({"message": text}))
            seen_by_alice = await self.receive(alice, is_ours, "message on the sender's socket")
            seen_by_bob = await self.receive(bob, is_ours, "message on the other socket")
        if seen_by_alice["id"] != seen_by_bob["id"]:
            raise CheckFailed(f"ids differ: {seen_by_alice['id']} != {seen_by_bob['id']}")
        return f"room {SMOKE_ROOM}, message id {seen_by_bob['id']}"

    @property
    def bearer(self):
        # The token in a header, never in the URL: nginx's error log records the URLs of
        # requests that fail at the proxy, query string included (and refuses ?token=).
        return {"Authorization": f"Bearer {self.token}"}

    async def push_arrives(self, ws):
        """POST a notification to the token's user; (its id, ms until it arrived on ws)."""
        text = f"smoke push {uuid.uuid4().hex}"
        started = time.monotonic()
        status, body = await asyncio.to_thread(
            self.http, "POST", "/api/notifications/", {"text": text}, self.bearer
        )
        if status != 201:
            raise CheckFailed(f"POST /api/notifications/ answered {status}: {body}")
        frame = await self.receive(ws, lambda f: f.get("text") == text, "notification")
        if frame.get("id") != body["id"] or frame.get("type") != "notification":
            raise CheckFailed(f"unexpected frame {frame} for notification {body['id']}")
        return body["id"], (time.monotonic() - started) * 1000

    async def check_push(self):
        async with self.websocket("/ws/notifications/", self.bearer) as ws:
            notification, elapsed = await self.push_arrives(ws)
        return f"notification {notification} arrived in {elapsed:.0f} ms"

    async def check_ticket(self):
        status, body = await asyncio.to_thread(
            self.http, "POST", "/api/ws-ticket/", {}, self.bearer
        )
        if status != 201:
            raise CheckFailed(f"POST /api/ws-ticket/ answered {status}: {body}")
        offer = ["realtime.ticket", body["ticket"]]
        async with self.websocket("/ws/notifications/", subprotocols=offer) as ws:
            notification, _ = await self.push_arrives(ws)
        async with self.websocket("/ws/notifications/", subprotocols=offer) as again:
            await self.receive(again, lambda f: "error" in f, "refusal of a used ticket")
        return f"one socket (notification {notification} arrived), then refused"

    # demo: end

    async def run(self):
        checks = [("healthz", self.check_healthz), ("echo", self.check_echo)]
        # demo: begin
        checks.append(("chat", self.check_chat))
        if self.token:
            checks += [("push", self.check_push), ("ticket", self.check_ticket)]
        # demo: end
        failures = 0
        for name, check in checks:
            started = time.monotonic()
            try:
                detail = await asyncio.wait_for(check(), self.timeout * 3)
            except Exception as error:  # noqa: BLE001 - every failure is reported, none hidden
                failures += 1
                reason = str(error) or type(error).__name__
                print(f"FAIL {name:<8} {reason}", flush=True)
            else:
                took = (time.monotonic() - started) * 1000
                print(f"PASS {name:<8} {detail} ({took:.0f} ms)", flush=True)
        # demo: begin
        if not self.token:
            print(
                "note: push not checked; pass --token <api token> "
                "to prove gunicorn → Redis → daphne"
            )
        # demo: end
        return failures


def pin_addresses(pins):
    """Connections to HOST:PORT go to ADDRESS, for each "HOST:PORT:ADDRESS" in ``pins``."""
    pinned = {}
    for pin in pins:
        host, port, address = pin.split(":", 2)
        if not (host and port.isdigit() and address):
            raise SystemExit(f"smoke: --resolve takes HOST:PORT:ADDRESS, got {pin!r}")
        pinned[(host, port)] = address
    resolve = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        return resolve(pinned.get((host, str(port)), host), port, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the site's base URL, e.g. https://chat.example.com")
    parser.add_argument("--token", help="an API token (manage.py issue_token) for the push check")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per step (default 10)")
    parser.add_argument("--cafile", help="CA bundle to trust (e.g. a test certificate)")
    parser.add_argument(
        "--resolve", action="append", default=[], metavar="HOST:PORT:ADDRESS",
        help="connect to ADDRESS for HOST:PORT instead of what DNS says (as curl's --resolve)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    pin_addresses(args.resolve)
    smoke = Smoke(args.url, token=args.token, timeout=args.timeout, cafile=args.cafile)
    failures = asyncio.run(smoke.run())
    print(f"{'FAILED' if failures else 'OK'}: {failures} check(s) failed against {smoke.http_url}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
