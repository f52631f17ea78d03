"""A real Prometheus (Debian's package) scraping a local stack, queried over its HTTP API."""

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from e2e.localstack import free_port
from polling import wait_until

START_TIMEOUT = 60


class Prometheus:
    """``prometheus`` on a free port of 127.0.0.1, with ``config`` and its own storage."""

    def __init__(self, config, storage):
        self.config = config
        self.storage = storage
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = None
        self.log = storage.parent / "prometheus.log"

    def start(self):
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed; `make test` installs it (apt)")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.storage}",
                 f"--web.listen-address={self.url.removeprefix('http://')}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_until(self.ready, "Prometheus to be ready", START_TIMEOUT, retry_on=OSError)
        except BaseException:
            self.stop()
            raise
        return self

    def ready(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return response.status == 200

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, promql):
        """An instant vector as {frozenset of labels: value}."""
        data = self.api("query", query=promql)
        return {
            frozenset(sample["metric"].items()): float(sample["value"][1])
            for sample in data["result"]
        }

    def value(self, promql):
        """The one value of a query that returns a single series (None for none)."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return next(iter(result.values()), None)

    def wait_for(self, promql, expected, timeout=30):
        """Poll until ``promql``'s single value is ``expected``; AssertionError with the
        last value seen otherwise (scrapes run every second)."""
        seen = []

        def matches():
            seen.append(self.value(promql))
            return seen[-1] == expected

        try:
            wait_until(matches, f"{promql} == {expected}", timeout, retry_on=urllib.error.URLError)
        except TimeoutError:
            raise AssertionError(f"{promql}: expected {expected}, last seen {seen[-1:]}") from None
