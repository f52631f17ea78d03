"""Talking to a compose stack's nginx the way a browser on the site would: its domain (SNI,
Host, Origin) on 127.0.0.1, where the test's published ports are. DNS would point the
domain here; the tests make each connection go to 127.0.0.1 instead."""

import hashlib
import http.client
import json
import socket
import ssl
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

from websockets.asyncio.client import connect

TIMEOUT = 10
# What deploy/smoke.py checks, in order, when it is given a token.
SMOKE_CHECKS = ["healthz", "echo", "chat", "push", "ticket"]


def served_certificate(port, domain, timeout=TIMEOUT):
    """The certificate nginx presents for ``domain`` on 127.0.0.1:``port``, as PEM."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=domain) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return ssl.DER_cert_to_PEM_cert(der)


def fingerprint(pem):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


class _Connection(http.client.HTTPSConnection):
    """HTTPS to the site's name, connected to 127.0.0.1."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class SiteHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS, connected to 127.0.0.1 (for e2e.localstack.sign_in)."""

    def https_open(self, request):
        return self.do_open(_Connection, request, context=self._context)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage  # headers["Location"], headers.get_all("Set-Cookie")
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Site:
    domain: str
    https_port: int
    http_port: int

    @property
    def url(self):
        return f"https://{self.domain}:{self.https_port}"

    def tls_context(self):
        """Trusts exactly the certificate nginx serves now (a throwaway one, its own CA)."""
        return ssl.create_default_context(cadata=served_certificate(self.https_port, self.domain))

    def request(self, method, path, body=None, headers=None, timeout=TIMEOUT, context=None):
        connection = _Connection(
            self.domain, self.https_port, timeout=timeout, context=context or self.tls_context()
        )
        try:
            data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
            connection.request(method, path, body=data, headers=headers or {})
            response = connection.getresponse()
            return Response(response.status, response.msg, response.read())
        finally:
            connection.close()

    def http_request(self, path, headers=None, timeout=TIMEOUT):
        """Plain HTTP on the published port 80 equivalent, with the site's Host."""
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"Host": self.domain, **(headers or {})})
            response = connection.getresponse()
            return Response(response.status, response.msg, response.read())
        finally:
            connection.close()

    def notify(self, token, text, context=None, timeout=TIMEOUT):
        return self.request(
            "POST", "/api/notifications/", {"text": text},
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            context=context, timeout=timeout,
        )  # fmt: skip

    def websocket(self, path, token=None, since=None, context=None):
        query = f"?{urlencode({'since': since})}" if since is not None else ""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return connect(
            f"wss://{self.domain}:{self.https_port}{path}{query}",
            host="127.0.0.1", port=self.https_port, ssl=context or self.tls_context(),
            origin=self.url, additional_headers=headers, open_timeout=TIMEOUT, close_timeout=2,
        )  # fmt: skip
