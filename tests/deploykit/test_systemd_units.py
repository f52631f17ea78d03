"""The systemd units: systemd accepts them together, and every service is sandboxed to an
exposure of 2.0 or better."""

import re
import subprocess

import pytest
from deploykit.kit import SERVICES, site_for_this_machine

UNITS = [
    "gunicorn.socket", "gunicorn.service", "daphne@1.socket", "daphne@1.service",
    "daphne@2.socket", "daphne@2.service", "realtime.target",
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
