"""Installing what the stack and the test suite run: Debian packages, and the tools built with Go.

Debian packages are installed with apt-get, as root or through sudo, and the system service a package
starts is stopped (the stack and the tests run their own servers on 127.0.0.1). The Go tools are built
into the git-ignored .cache/ and reused while what they were built from is unchanged:

- the OpenTelemetry Collector, by the OpenTelemetry Collector Builder from collector/builder-config.yaml
  (rebuilt when sha256(builder-config.yaml), the builder version or the Go version changes);
- Jaeger v2, from its released Go module (one folder per version);
- the compose checker, collector/composecheck (rebuilt when its sources or the Go version change).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devtools.stack import CACHE, COLLECTOR_DIR, ROOT, TOOLS, StackError, exclusive_lock, say, step

if TYPE_CHECKING:
    from collections.abc import Callable

OFFICIAL_GO = Path("/usr/local/go/bin/go")  # where the official tarball installs it

COLLECTOR_BUILDER_VERSION = "v0.161.0"  # keep on the release of every module in builder-config.yaml
COLLECTOR_MANIFEST = COLLECTOR_DIR / "builder-config.yaml"
COLLECTOR_BINARY = CACHE / "otelcol" / "otelcol-resilience"  # dist.output_path and dist.name there

JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_VERSION = "v1.76.0"  # the Go module's version of Jaeger v2.13.0 (the compose image tag)
JAEGER_V2_VERSION = "v2.13.0"
JAEGER_VERSION_VARIABLE = "github.com/jaegertracing/jaeger/internal/version.latestVersion"

COMPOSECHECK_SOURCE = COLLECTOR_DIR / "composecheck"
COMPOSECHECK_BINARY = TOOLS / "composecheck" / "composecheck"


# ------------------------------------------------------------------------------------ running


def run_with_heartbeat(
    argv: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> None:
    """Run a long command, its output passed through to stderr, with a line every 30 s showing progress."""
    began = time.monotonic()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=sys.stderr, stderr=sys.stderr)
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(30):
            say(f"    ... still {what} ({time.monotonic() - began:.0f} s)")

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        code = process.wait()
    finally:
        done.set()
    if code != 0:
        raise StackError(f"{what} failed (exit code {code}): {' '.join(argv)}")
    say(f"    {what}: done in {time.monotonic() - began:.0f} s")


# ----------------------------------------------------------------------------- Debian packages


def as_root(argv: list[str]) -> list[str]:
    """Argv run as root: as is when we are root, else through sudo."""
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo"):
        return ["sudo", "DEBIAN_FRONTEND=noninteractive", *argv]
    raise StackError(f"installing Debian packages needs root or sudo: {' '.join(argv)}")


def which(command: str) -> Path | None:
    """On PATH, or in /usr/bin (Debian's packages) when PATH lacks it."""
    found = shutil.which(command)
    if found is None and Path(f"/usr/bin/{command}").exists():
        found = f"/usr/bin/{command}"
    return Path(found) if found else None


def _apt_environment() -> dict[str, str]:
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


@functools.cache
def _apt_update() -> None:
    """Refresh the package lists once per run, before the first install."""
    run_with_heartbeat(as_root(["apt-get", "update", "-q"]), "apt-get update", _apt_environment())


def stop_system_service(service: str) -> None:
    """The package started a system service listening on 0.0.0.0: stop it and keep it from starting."""
    if Path("/run/systemd/system").exists() and shutil.which("systemctl"):
        argvs = [["systemctl", "disable", "--now", service]]
    else:
        argvs = [["service", service, "stop"], ["update-rc.d", service, "disable"]]
    for argv in argvs:
        if shutil.which(argv[0]):
            subprocess.run(as_root(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    say(f"    stopped and disabled the system service '{service}' (we run our own {service})")


def debian_command(command: str, package: str, service: str) -> Path:
    """The path of a Debian package's command, installing the package first when the command is missing."""
    found = which(command)
    if found:
        return found
    if not shutil.which("apt-get"):
        raise StackError(f"{command} is missing and this is not a Debian system: install {package}")
    step(f"installing Debian package {package} (provides {command})")
    _apt_update()
    run_with_heartbeat(
        as_root(["apt-get", "install", "-y", "-q", "--no-install-recommends", package]),
        f"installing {package}",
        _apt_environment(),
    )
    stop_system_service(service)
    found = which(command)
    if not found:
        raise StackError(f"{package} is installed but {command} was not found")
    return found


def debian_binary(command: str, package: str, service: str) -> Callable[[], Path]:
    """A component's binary from a Debian package, installed on first use."""
    return functools.partial(debian_command, command, package, service)


# ------------------------------------------------------------------------------------------ Go


def find_go() -> Path:
    """The go command: on PATH, else where the official tarball puts it."""
    found = shutil.which("go")
    if found:
        return Path(found)
    if OFFICIAL_GO.exists():
        return OFFICIAL_GO
    raise StackError(
        f"go is not installed (not on PATH, not at {OFFICIAL_GO}): the collector, Jaeger and the compose "
        "checker are built from source with Go >= 1.26, which the collector release's go.mod requires "
        "(https://go.dev/doc/install, or Debian's golang-go if recent enough)"
    )


def go_environment(go: Path, **variables: str) -> dict[str, str]:
    """The environment for go and the tools that call it (the builder runs `go build` by name)."""
    return {**os.environ, "PATH": f"{go.parent}{os.pathsep}{os.environ.get('PATH', '')}", **variables}


def go_version(go: Path) -> str:
    """E.g. go1.26.8: part of the build stamps, so a Go upgrade rebuilds."""
    done = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StackError(f"'{go} env GOVERSION' failed: is the Go installation broken?\n{done.stderr}")
    return done.stdout.strip()


def _sha256(*files: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _built_and_stamped(binary: Path, stamp: str) -> bool:
    """Whether binary exists and was built from what `stamp` describes."""
    stamp_file = binary.parent / ".build-stamp"
    try:
        return os.access(binary, os.X_OK) and stamp_file.read_text().strip() == stamp
    except OSError:
        return False


def _write_stamp(binary: Path, stamp: str) -> None:
    (binary.parent / ".build-stamp").write_text(stamp + "\n")


def collector_binary(force: bool = False) -> Path:
    """The collector of collector/builder-config.yaml, built when missing or out of date (or forced)."""
    go = find_go()
    stamp = (
        f"manifest-sha256={_sha256(COLLECTOR_MANIFEST)} builder={COLLECTOR_BUILDER_VERSION} "
        f"go={go_version(go)}"
    )
    # One build at a time: scripts/stack and a test run may ask concurrently.
    with exclusive_lock(CACHE / "otelcol.lock"):
        if not force and _built_and_stamped(COLLECTOR_BINARY, stamp):
            step(f"collector up to date ({stamp})")
            return COLLECTOR_BINARY
        builder = TOOLS / f"ocb-{COLLECTOR_BUILDER_VERSION}" / "builder"
        if not os.access(builder, os.X_OK):
            step(
                f"installing the OpenTelemetry Collector Builder {COLLECTOR_BUILDER_VERSION} "
                f"into {builder.parent.relative_to(ROOT)} ({go_version(go)})"
            )
            module = f"go.opentelemetry.io/collector/cmd/builder@{COLLECTOR_BUILDER_VERSION}"
            run_with_heartbeat(
                [str(go), "install", module],
                f"go install {module}",
                go_environment(go, GOBIN=str(builder.parent)),
            )
        step(
            f"building {COLLECTOR_BINARY.name} from {COLLECTOR_MANIFEST.relative_to(ROOT)} with builder "
            f"{COLLECTOR_BUILDER_VERSION} (a cold build takes several minutes)"
        )
        (COLLECTOR_BINARY.parent / ".build-stamp").unlink(missing_ok=True)
        began = time.monotonic()
        # From the repository root: dist.output_path in the manifest is relative to it.
        run_with_heartbeat(
            [str(builder), f"--config={COLLECTOR_MANIFEST}"],
            "building the collector",
            go_environment(go),
            ROOT,
        )
        if not os.access(COLLECTOR_BINARY, os.X_OK):
            raise StackError(
                f"the builder finished but {COLLECTOR_BINARY} does not exist "
                f"(check dist.output_path in {COLLECTOR_MANIFEST.relative_to(ROOT)})"
            )
        version = subprocess.run(
            [str(COLLECTOR_BINARY), "--version"], capture_output=True, text=True, check=False
        )
        if version.returncode != 0:
            raise StackError(f"{COLLECTOR_BINARY} was built but does not run:\n{version.stderr}")
        _write_stamp(COLLECTOR_BINARY, stamp)
        step(f"built {version.stdout.strip()} in {time.monotonic() - began:.0f} s")
    return COLLECTOR_BINARY


def jaeger_binary() -> Path:
    """Jaeger v2 built from its released Go module, cached under .cache/tools/.

    `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0` is refused by Go because the
    module's go.mod has a replace directive (github.com/Shopify/sarama pinned). So the released module
    is downloaded into the Go module cache and built as the main module, where its go.mod (replace
    included) and go.sum apply exactly as in Jaeger's own release build.
    """
    binary = TOOLS / f"jaeger-{JAEGER_VERSION}" / "jaeger"
    if binary.exists():
        return binary
    go = find_go()
    binary.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(TOOLS / "jaeger.lock"):
        if binary.exists():
            return binary
        where = binary.parent.relative_to(ROOT)
        step(f"building Jaeger {JAEGER_MODULE}/cmd/jaeger@{JAEGER_VERSION} into {where} (cold: minutes)")
        module = f"{JAEGER_MODULE}@{JAEGER_VERSION}"
        download = subprocess.run(
            [str(go), "mod", "download", "-json", module],
            cwd=TOOLS,
            env=go_environment(go),
            capture_output=True,
            text=True,
            check=False,
        )
        if download.returncode != 0:
            raise StackError(f"go mod download {module} failed:\n{download.stdout}{download.stderr}")
        partial = binary.with_name("jaeger.partial")
        ldflags = f"-s -w -X {JAEGER_VERSION_VARIABLE}={JAEGER_V2_VERSION}"
        run_with_heartbeat(
            [str(go), "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial), "./cmd/jaeger"],
            "building Jaeger",
            go_environment(go),
            cwd=Path(json.loads(download.stdout)["Dir"]),
        )
        partial.rename(binary)  # a build cut short never looks complete
    return binary


def composecheck_binary() -> Path:
    """collector/composecheck (compose-go, docker compose's loader), built when its sources change."""
    go = find_go()
    sources = [COMPOSECHECK_SOURCE / name for name in ("go.mod", "go.sum", "main.go")]
    stamp = f"sources-sha256={_sha256(*sources)} go={go_version(go)}"
    with exclusive_lock(TOOLS / "composecheck.lock"):
        if _built_and_stamped(COMPOSECHECK_BINARY, stamp):
            return COMPOSECHECK_BINARY
        step(f"building the compose checker {COMPOSECHECK_SOURCE.relative_to(ROOT)} (compose-go)")
        COMPOSECHECK_BINARY.parent.mkdir(parents=True, exist_ok=True)
        partial = COMPOSECHECK_BINARY.with_name("composecheck.partial")
        # -mod=readonly: the pinned go.mod and go.sum are used as committed, never updated.
        run_with_heartbeat(
            [str(go), "build", "-mod=readonly", "-trimpath", "-o", str(partial), "."],
            "building the compose checker",
            go_environment(go),
            cwd=COMPOSECHECK_SOURCE,
        )
        partial.rename(COMPOSECHECK_BINARY)
        _write_stamp(COMPOSECHECK_BINARY, stamp)
    return COMPOSECHECK_BINARY
