"""One middleware for seeing into HTTP requests: their request id for the logs
(realtime.request_id), and for Prometheus how many each view answers, with which status,
how fast (realtime.metrics).

Not django-prometheus: that one wraps the stack in two middlewares and adds some fifteen
metric families (by method, by transport, request and response sizes...), while an
operator of this stack asks for two. It is first in MIDDLEWARE, so the time includes every
other middleware; async-capable, so daphne's event-stream requests take no thread hop.
"""

from time import perf_counter

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from . import request_id
from .metrics import request_seconds, requests

UNMATCHED = "<unmatched>"  # no URL pattern matched (404s of unknown paths): one label


def view_of(request):
    """The URL pattern's name (or its view's dotted path): a bounded label."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else UNMATCHED


class ObservabilityMiddleware:
    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token, started = self.begin(request)
        try:
            response = self.get_response(request)
        finally:
            request_id.current.reset(token)
        return self.end(request, response, started)

    async def __acall__(self, request):
        token, started = self.begin(request)
        try:
            response = await self.get_response(request)
        finally:
            request_id.current.reset(token)
        return self.end(request, response, started)

    @staticmethod
    def begin(request):
        return request_id.current.set(request_id.of_request(request)), perf_counter()

    @staticmethod
    def end(request, response, started):
        view = view_of(request)
        request_seconds.labels(view).observe(perf_counter() - started)
        requests.labels(view, request.method, str(response.status_code)).inc()
        return response
