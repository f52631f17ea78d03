"""The systemd units: systemd accepts them together, and every service is sandboxed to an
exposure of 2.0 or better."""

import re
import subprocess

import pytest
from deploykit.kit import NAME, SERVICES, site_for_this_machine
from e2e.localstack import deploy_module

UNITS = [
    f"{NAME}-gunicorn.socket", f"{NAME}-gunicorn.service", f"{NAME}-daphne@1.socket",
    f"{NAME}-daphne@1.service", f"{NAME}-daphne@2.socket", f"{NAME}-daphne@2.service",
    f"{NAME}.target",
]  # fmt: skip
EXPOSURE_BAR = 2.0


@pytest.fixture
def unit_dir(tmp_path):
    return site_for_this_machine(tmp_path) / "etc" / "systemd" / "system"


def systemd_analyze(unit_dir, *args):
    return subprocess.run(
        ["systemd-analyze", *args], cwd=unit_dir, capture_output=True, text=True, timeout=60
    )


def test_systemd_verifies_all_units_together(unit_dir):
    result = systemd_analyze(unit_dir, "verify", *UNITS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_is_hardened(unit_dir, service):
    result = systemd_analyze(unit_dir, "security", "--offline=true", "--no-pager", service)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert level, result.stdout + result.stderr
    assert float(level.group(1)) <= EXPOSURE_BAR, result.stdout


def stop_timeout(unit_dir, service):
    return int(re.search(r"^TimeoutStopSec=(\d+)$", (unit_dir / service).read_text(), re.M)[1])


def test_systemd_waits_longer_than_each_server_takes_to_stop(unit_dir):
    """Otherwise systemd kills gunicorn mid-request, or daphne before its 1012 closes."""
    gunicorn = deploy_module("gunicorn.conf")
    assert stop_timeout(unit_dir, SERVICES[0]) > gunicorn.graceful_timeout
    daphne = deploy_module("run_daphne")
    assert stop_timeout(unit_dir, SERVICES[1]) > daphne.SHUTDOWN_GRACE_SECONDS
