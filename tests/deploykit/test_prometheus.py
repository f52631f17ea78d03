"""The kit's Prometheus files (deploy/prometheus/): promtool accepts the scrape config and
the alert rules as rendered for a server, and the rules pass their unit tests."""

import subprocess

import pytest
from deploykit.kit import REPO_DIR, site_for_this_machine
from ruamel.yaml import YAML

PROMETHEUS_DIR = REPO_DIR / "deploy" / "prometheus"


def load(path):
    return YAML(typ="safe").load(path.read_text())


def promtool(*args, cwd=None):
    result = subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def host(tmp_path):
    """Two projects' kits installed on one host (their shared Prometheus directory)."""
    site_for_this_machine(tmp_path, "realtime", "realtime.example.test")
    site_for_this_machine(tmp_path, "chatapp", "chatapp.example.test", daphne_instances=3)
    return tmp_path / "prometheus"


def test_promtool_accepts_the_rendered_config_and_its_rules(host):
    assert "SUCCESS" in promtool("check", "config", str(host / "prometheus.yml"))


def test_the_alert_rules_pass_promtool_and_their_unit_tests():
    promtool("check", "rules", "rules.yml", cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in promtool("test", "rules", "rules.test.yml", cwd=PROMETHEUS_DIR)


def test_each_project_lists_gunicorn_and_each_daphne_instance(host):
    groups = {name: load(host / "targets" / f"{name}.yml") for name in ("realtime", "chatapp")}
    paths = {
        name: [group["labels"]["__metrics_path__"] for group in target_groups]
        for name, target_groups in groups.items()
    }
    assert paths == {
        "realtime": ["/realtime/gunicorn/metrics", "/realtime/daphne-1/metrics",
                     "/realtime/daphne-2/metrics"],
        "chatapp": ["/chatapp/gunicorn/metrics", "/chatapp/daphne-1/metrics",
                    "/chatapp/daphne-2/metrics", "/chatapp/daphne-3/metrics"],
    }  # fmt: skip
    for target_groups in groups.values():
        for group in target_groups:
            assert group["targets"] == ["127.0.0.1:9405"]
            labels = group["labels"]
            assert labels["instance"] == f"{labels['project']}/{labels['process']}"


def test_every_rule_is_tested():
    rules = load(PROMETHEUS_DIR / "rules.yml")
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = load(PROMETHEUS_DIR / "rules.test.yml")
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert tested == alerts
