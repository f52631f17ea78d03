"""Stand-ins for the official base images, built here from Debian packages (no image registry
is reachable), tagged with the names the shipped files use. See standins/README.md.

Built once and kept in the engine's cached data root; each image is labelled with a digest
of its inputs (its directory, the Debian base, the host's CA bundle for the Python one), so
a change to any of them rebuilds it, and nothing else does.
"""

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from containers.engine import CACHE_DIR, DOCKER, EngineError
from ruamel.yaml import YAML

STANDINS_DIR = Path(__file__).resolve().parent / "standins"
# Name in the shipped files → its recipe in standins/.
STANDINS = {
    "python:3.11-slim-bookworm": "python",
    "nginx:1.27-bookworm": "nginx",
    "redis:7-bookworm": "redis",
    "postgres:15-bookworm": "postgres",
    "certbot/certbot:v5.6.0": "certbot",
}
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What Debian's own container images add to a debootstrap root: every bookworm archive, and
# no service started by a package's postinst.
SOURCES = f"""deb {MIRROR} {SUITE} main
deb {MIRROR} {SUITE}-updates main
deb http://deb.debian.org/debian-security {SUITE}-security main
"""
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
# pip inside image builds goes through an intercepting proxy that the host trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LABEL = "org.realtime-django.test-standin"
BUILD_TIMEOUT = 900


def digest(*parts):
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part if isinstance(part, bytes) else str(part).encode())
        sha.update(b"\0")
    return sha.hexdigest()[:12]


def named_base_images(checkout):
    """The base images deploy/Dockerfile and the compose files name (not the project's own)."""
    dockerfile = (checkout / "deploy" / "Dockerfile").read_text()
    names = set(re.findall(r"^ARG \w+_IMAGE=(\S+)$", dockerfile, re.M))
    names |= {n for n in re.findall(r"^FROM (\S+)", dockerfile, re.M) if "$" not in n}
    names -= set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.M))  # stages
    for compose_file in checkout.glob("docker-compose.*.yml"):
        services = YAML(typ="safe").load(compose_file.read_text())["services"]
        names |= {s["image"] for s in services.values() if "build" not in s and "image" in s}
    return names


def debian_base(engine):
    """Debian 12 minbase from a cached debootstrap root, imported into the engine."""
    key = digest(SUITE, MIRROR, SOURCES, POLICY_RC_D)
    name = f"realtime-test/debian:{SUITE}-{key}"
    if engine.image_exists(name):
        return name
    root = CACHE_DIR / f"rootfs-{SUITE}-{key}"
    if not (root / "usr/bin/apt-get").exists():
        partial = root.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(partial), MIRROR],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        (partial / "etc/apt/sources.list").write_text(SOURCES)
        (partial / "usr/sbin/policy-rc.d").write_text(POLICY_RC_D)
        (partial / "usr/sbin/policy-rc.d").chmod(0o755)
        shutil.rmtree(partial / "var/lib/apt/lists", ignore_errors=True)
        (partial / "var/lib/apt/lists/partial").mkdir(parents=True)
        partial.rename(root)
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    try:
        imported = subprocess.run(
            [DOCKER, "import", "-", name], stdin=tar.stdout, env=engine.env,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        tar.stdout.close()
        tar.wait(60)
    if imported.returncode != 0:
        raise EngineError(f"docker import of {root} failed: {imported.stderr}")
    return name


def build_standins(engine, names):
    """Each image in ``names`` built from its stand-in recipe, unless it is current.
    Returns {name: "built" or "cached"}."""
    missing = set(names) - set(STANDINS)
    if missing:
        raise EngineError(f"no stand-in for {sorted(missing)}: add one under {STANDINS_DIR}")
    base = debian_base(engine)
    done = {}
    for name in sorted(names):
        directory = STANDINS_DIR / STANDINS[name]
        extras = {"host-ca-certificates.crt": HOST_CA_BUNDLE} if STANDINS[name] == "python" else {}
        files = sorted(p for p in directory.rglob("*") if p.is_file())
        key = digest(
            base,
            *(f"{p.relative_to(directory)}:{p.stat().st_mode & 0o111}" for p in files),
            *(p.read_bytes() for p in files),
            *(path.read_bytes() for path in extras.values()),
        )
        if label(engine, name) == key:
            done[name] = "cached"
            continue
        with tempfile.TemporaryDirectory() as context:
            shutil.copytree(directory, context, dirs_exist_ok=True)
            for target, source in extras.items():
                shutil.copy(source, Path(context) / target)
            engine.docker(
                "build", "--network", "host", "--build-arg", f"BASE={base}",
                "--label", f"{LABEL}={key}", "-t", name, context, timeout=BUILD_TIMEOUT,
            )  # fmt: skip
        done[name] = "built"
    return done


def label(engine, name):
    result = engine.docker(
        "image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', name,
        check=False,
    )  # fmt: skip
    return result.stdout.strip() if result.returncode == 0 else None
