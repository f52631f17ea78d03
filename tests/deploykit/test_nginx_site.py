"""The production nginx site: nginx accepts it, and gixy finds no medium or high issue in
any nginx file the project ships."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from deploykit.kit import COMPOSE_BACKENDS, REPO_DIR, nginx_includes, site_for_this_machine
from e2e.localstack import deploy_module

NGINX_DIR = REPO_DIR / "deploy" / "nginx"


@pytest.fixture(params=["server", "compose"])
def site(request, tmp_path):
    """The project's site file and what every site on the server shares (conf.d), as a
    server gets them and as the compose nginx image does."""
    values = COMPOSE_BACKENDS if request.param == "compose" else {}
    return nginx_includes(site_for_this_machine(tmp_path, **values))


def debian_conf(tmp_path, includes):
    """This machine's own /etc/nginx/nginx.conf (Debian's, as on a server), with
    ``includes`` as the only sites and tuning.conf's limits in place of its own."""
    debian = Path("/etc/nginx/nginx.conf").read_text()
    debian = re.sub(r"^(worker_processes|pid|user) .*$", "", debian, flags=re.M)
    debian = re.sub(r"^events \{.*?^\}", "", debian, flags=re.M | re.S)
    debian = debian.replace("include /etc/nginx/sites-enabled/*;", includes)
    debian = debian.replace("include /etc/nginx/conf.d/*.conf;", "")
    return write_main_conf(tmp_path, debian)


def nginx_test(tmp_path, conf):
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr, result.stderr


@pytest.fixture
def debian_main_conf(site, tmp_path):
    return debian_conf(tmp_path, site)


@pytest.fixture
def main_conf(site, tmp_path):
    """Only the project's files: the site in http {}, tuning.conf's limits."""
    return write_main_conf(tmp_path, f"http {{\n    {site}\n}}\n")


def write_main_conf(tmp_path, rest):
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"include {NGINX_DIR / 'tuning.conf'};\npid {tmp_path / 'nginx.pid'};\n{rest}")
    return conf


def test_nginx_accepts_the_site_file(debian_main_conf, tmp_path):
    nginx_test(tmp_path, debian_main_conf)


def test_two_projects_sites_share_one_nginx(tmp_path):
    """Each site names its upstreams after its project; what they share is installed once."""
    kits = [site_for_this_machine(tmp_path, name, f"{name}.example.test")
            for name in ("realtime", "chatapp")]  # fmt: skip
    nginx_test(tmp_path, debian_conf(tmp_path, nginx_includes(*kits)))


def local_stack_conf(tmp_path, metrics_port=9405):
    """The nginx.conf `make up` writes, rendered by deploy/local/stack.py itself; with
    ``metrics_port=None``, the bench floor's (no metrics server)."""
    stack_module = deploy_module("local/stack")
    data = tmp_path / "local"
    stack = stack_module.Stack(
        data_dir=data, run_dir=data / "run", log_dir=data / "log",
        static_root=data / "public" / "static", address="127.0.0.1", port=8080,
        daphne_instances=2, own_redis=True, allowed_hosts=["127.0.0.1", "localhost"],
        metrics_port=metrics_port, demo_users=False,
    )  # fmt: skip
    stack_module.write_configs(stack)
    return stack.run_dir / "nginx.conf"


@pytest.mark.parametrize("metrics_port", [9405, None], ids=["make up", "bench floor"])
def test_nginx_accepts_the_local_stack_with_or_without_its_metrics_server(metrics_port, tmp_path):
    conf = local_stack_conf(tmp_path, metrics_port)
    nginx_test(tmp_path, conf)
    assert ("listen 127.0.0.1:9405;" in conf.read_text()) == (metrics_port is not None)


def gixy_issues(conf):
    result = subprocess.run(
        [str(REPO_DIR / ".venv/bin/gixy"), "--format", "json", str(conf)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def serious_issues(conf):
    return [
        f"{issue['severity']} {issue['plugin']}: {issue['summary']}"
        for issue in gixy_issues(conf)
        if issue["severity"] in ("MEDIUM", "HIGH")
    ]


def test_gixy_finds_no_medium_or_high_issue_in_the_site(main_conf):
    assert serious_issues(main_conf) == []


@pytest.mark.parametrize("which", ["local stack", "compose (dev)"])
def test_gixy_finds_no_medium_or_high_issue(which, tmp_path):
    conf = {
        "local stack": lambda: local_stack_conf(tmp_path),
        "compose (dev)": lambda: NGINX_DIR / "compose-dev.conf",
    }[which]()
    assert serious_issues(conf) == []
