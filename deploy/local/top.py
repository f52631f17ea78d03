"""`make top`: a live view of the local stack in the terminal, from the metrics its
processes serve (the same ones Prometheus scrapes: nginx's private metrics server,
/PROJECT_NAME/<process>/metrics). No Prometheus needed: rates and the push p99 come from
the difference between two reads, over the last WINDOW_SECONDS."""

import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REFRESH_SECONDS = 2
WINDOW_SECONDS = 30  # rates, push p99 and the last closes are over this much


@dataclass
class Reading:
    """One read of every process: {process: {(sample name, labels): value}}, None if down."""

    at: float
    processes: dict = field(default_factory=dict)

    def value(self, process, name, **labels):
        samples = self.processes.get(process) or {}
        return samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, process, name, **labels):
        """Sum over the samples of ``name`` whose labels include ``labels``."""
        samples = self.processes.get(process) or {}
        wanted = set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)

    def by_label(self, name, label, processes=None):
        """{label value: sum over processes} of ``name``."""
        sums = {}
        for process, samples in self.processes.items():
            if samples is None or (processes is not None and process not in processes):
                continue
            for (sample_name, labels), value in samples.items():
                if sample_name == name:
                    key = dict(labels).get(label, "")
                    sums[key] = sums.get(key, 0.0) + value
        return sums


def read(metrics_url, project, processes, timeout=2):
    reading = Reading(time.monotonic())
    for process in processes:
        try:
            with urllib.request.urlopen(
                f"{metrics_url}/{project}/{process}/metrics", timeout=timeout
            ) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            reading.processes[process] = None
            continue
        reading.processes[process] = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
    return reading


def quantile(q, buckets):
    """Prometheus' histogram_quantile over {upper bound: cumulative count} (linear within a
    bucket); None without observations."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def histogram_delta(old, new, name, processes, **labels):
    """{le: count} of ``name``'s observations between two readings, summed over processes."""
    buckets = {}
    for process in processes:
        for reading, sign in ((new, 1), (old, -1)):
            samples = reading.processes.get(process) or {}
            for (sample_name, sample_labels), value in samples.items():
                found = dict(sample_labels)
                if sample_name != name or any(found.get(k) != v for k, v in labels.items()):
                    continue
                le = float(found["le"])
                buckets[le] = buckets.get(le, 0.0) + sign * value
    return buckets


def per_second(old, new, process, name, **labels):
    elapsed = max(new.at - old.at, 1e-9)
    return max(new.total(process, name, **labels) - old.total(process, name, **labels), 0) / elapsed


def milliseconds(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def counts(old, new, name, label, processes):
    """{label value: how many more} of a counter between two readings, most first."""
    before, after = old.by_label(name, label, processes), new.by_label(name, label, processes)
    grown = {key: after[key] - before.get(key, 0) for key in after}
    ordered = sorted(grown.items(), key=lambda item: -item[1])
    return ", ".join(f"{key} ×{value:.0f}" for key, value in ordered if value > 0) or "none"


def render(title, old, new, daphnes):
    """The screen for two readings ``WINDOW_SECONDS`` (or less) apart."""
    window = f"last {new.at - old.at:.0f} s"
    lines = [title, ""]
    header = (
        f"{'process':<10} {'up':<4} {'sockets':>8} {'msgs out/s':>11} {'msgs in/s':>10} "
        f"{'deliveries/s':>13} {'loop lag p99':>13} {'memory':>9}"
    )
    lines.append(header)
    for process in daphnes:
        if new.processes.get(process) is None:
            lines.append(f"{process:<10} {'down':<4}")
            continue
        lag = quantile(0.99, histogram_delta(old, new, "realtime_event_loop_lag_seconds_bucket",
                                             [process]))  # fmt: skip
        memory = new.value(process, "process_resident_memory_bytes") / 2**20
        lines.append(
            f"{process:<10} {'up':<4} {new.total(process, 'realtime_websockets_open'):>8.0f} "
            f"{per_second(old, new, process, 'realtime_websocket_frames_sent_total'):>11.1f} "
            f"{per_second(old, new, process, 'realtime_websocket_frames_received_total'):>10.1f} "
            f"{per_second(old, new, process, 'realtime_group_event_deliveries_total'):>13.1f} "
            f"{milliseconds(lag):>13} {memory:>5.0f} MiB"
        )
    gunicorn = new.processes.get("gunicorn")
    if gunicorn is None:
        lines.append(f"{'gunicorn':<10} down")
    else:
        memory = new.value("gunicorn", "realtime_gunicorn_resident_memory_bytes") / 2**20
        workers = new.value("gunicorn", "realtime_gunicorn_workers")
        requests = per_second(old, new, "gunicorn", "realtime_http_requests_total")
        lines.append(
            f"{'gunicorn':<10} {'up':<4} {workers:>4.0f} workers, {requests:.1f} requests/s "
            f"{'':>19} {memory:>5.0f} MiB"
        )
    every = [*daphnes, "gunicorn"]
    endpoints = new.by_label("realtime_websockets_open", "endpoint", daphnes)
    lines += [
        "",
        "sockets by endpoint: "
        + (", ".join(f"{k} {v:.0f}" for k, v in sorted(endpoints.items()) if v) or "none"),
    ]
    pushes = sum(per_second(old, new, p, "realtime_pushes_total", outcome="ok") for p in every)
    failed = sum(new.total(p, "realtime_pushes_total", outcome="failed") for p in every) - sum(
        old.total(p, "realtime_pushes_total", outcome="failed") for p in every
    )
    push_p99 = quantile(
        0.99, histogram_delta(old, new, "realtime_push_duration_seconds_bucket", every)
    )
    lines += [
        f"pushes: {pushes:.1f}/s, p99 {milliseconds(push_p99)} from commit to Redis, "
        f"{failed:.0f} failed ({window})",
        f"closes ({window}): "
        + counts(old, new, "realtime_websocket_closes_total", "code", daphnes),
        f"handshakes ({window}): "
        + counts(old, new, "realtime_websocket_handshakes_total", "outcome", daphnes),
    ]
    return "\n".join(lines)


def watch(metrics_url, project, daphne_instances, title, out, frames=None):
    """Redraw every REFRESH_SECONDS until interrupted (or ``frames`` screens were drawn)."""
    daphnes = [f"daphne-{n}" for n in range(1, daphne_instances + 1)]
    processes = [*daphnes, "gunicorn"]
    history = deque([read(metrics_url, project, processes)])
    drawn = 0
    while frames is None or drawn < frames:
        time.sleep(REFRESH_SECONDS)
        history.append(read(metrics_url, project, processes))
        while history[-1].at - history[0].at > WINDOW_SECONDS:
            history.popleft()
        stamp = time.strftime("%H:%M:%S")
        screen = render(f"{title}   {stamp}   (Ctrl-C to quit)", history[0], history[-1], daphnes)
        out.write("\033[H\033[J" + screen + "\n")
        out.flush()
        drawn += 1
