"""GET /healthz: is each dependency of the stack answering? (How long each check takes,
and how often one fails, go to Prometheus: realtime.metrics.)"""

from time import perf_counter

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import redis_store
from .metrics import check_failures, check_seconds


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis():
    """Every shard's primary answers (with Sentinel, new connections ask
    the Sentinels where the primary is, so the check follows a failover)."""
    for client in redis_store.clients():
        client.ping()


CHECKS = {"database": check_database, "redis": check_redis}


def run_checks():
    """{name: "ok" | "unavailable: <error class>"}; never raises."""
    results = {}
    for name, check in CHECKS.items():
        started = perf_counter()
        try:
            check()
        except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
            results[name] = f"unavailable: {type(error).__name__}"
            check_failures.labels(name).inc()
        else:
            results[name] = "ok"
        check_seconds.labels(name).observe(perf_counter() - started)
    return results


@never_cache
@require_GET
def healthz(request):
    checks = run_checks()
    healthy = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
