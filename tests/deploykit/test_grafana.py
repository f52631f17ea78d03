"""The Grafana dashboard (deploy/grafana/): well formed, on a Prometheus datasource the
user picks, every query valid PromQL (promtool) over metrics the kit serves.
(tests/e2e/test_metrics_and_logs.py runs every query against a real Prometheus too.)"""

import json
import re
import subprocess

import pytest
from deploykit.kit import REPO_DIR
from prometheus_client import REGISTRY

from realtime import metrics

DASHBOARD = REPO_DIR / "deploy" / "grafana" / "django-channels.json"
# What Grafana fills in, as the e2e test fills it in.
VARIABLES = {"$project": "realtime", "$__rate_interval": "1m"}
# Series every scrape has whatever the target: Prometheus' own.
PROMETHEUS_SERIES = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def load():
    return json.loads(DASHBOARD.read_text())


def queries(dashboard):
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def filled_in(expr):
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def served_metric_names():
    """Every sample name the kit's processes serve: realtime.metrics' (daphne's loop lag
    included), gunicorn's own (deploy/gunicorn.conf.py) and prometheus_client's process
    collector's."""
    names = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ("_total",), "histogram": HISTOGRAM_SUFFIXES}.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    names |= {metrics.EVENT_LOOP_LAG["name"] + suffix for suffix in HISTOGRAM_SUFFIXES}
    gunicorn = (REPO_DIR / "deploy" / "gunicorn.conf.py").read_text()
    names |= set(re.findall(r'"(realtime_gunicorn_\w+)"', gunicorn))
    return names


def test_the_dashboard_is_well_formed():
    dashboard = load()
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 12
    cells = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}  # fmt: skip
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        assert panel["title"] and panel["description"] and panel["targets"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_every_panel_queries_the_prometheus_the_user_picks_for_the_project_they_pick():
    dashboard = load()
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    project = variables["project"]
    assert project["datasource"]["uid"] == "${datasource}"
    assert project["definition"] == 'label_values(up{job="django-channels"}, project)'
    for panel in dashboard["panels"]:
        sources = [panel["datasource"], *(target["datasource"] for target in panel["targets"])]
        assert all(s == {"type": "prometheus", "uid": "${datasource}"} for s in sources)
    for expr in queries(dashboard):
        assert 'project="$project"' in expr, expr


def test_every_query_is_promql_over_metrics_the_kit_serves(tmp_path):
    exprs = [filled_in(expr) for expr in queries(load())]
    # promtool parses each query as a recording rule's expression.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(exprs)
    ]}]}  # fmt: skip
    rules_file = tmp_path / "dashboard.rules.json"  # JSON is YAML
    rules_file.write_text(json.dumps(rules))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    served = served_metric_names() | PROMETHEUS_SERIES
    referenced = {
        name for expr in exprs for name in re.findall(r"\b(realtime_\w+|process_\w+|up)\b", expr)
    }
    assert referenced - served == set()
    assert len(referenced) >= 15


@pytest.mark.parametrize(
    "name", ["realtime_websockets_open", "realtime_push_duration_seconds_bucket"]
)
def test_the_served_names_are_read_from_the_code(name):
    assert name in served_metric_names()
