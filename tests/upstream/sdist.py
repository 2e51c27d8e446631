"""An instrumented library's sdist, downloaded by package name with pip and unpacked once.

Cached under ``.cache/upstream/``. The sdist's own copy of the package is moved aside, so that its
tests import the installed library, the one our instrumentation patches. A failed download fails
the calling test: it never skips.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = ROOT / ".cache" / "upstream"


def unpacked_sdist(distribution: str, version: str, package: str) -> Path:
    """``distribution==version``'s sdist, unpacked with ``package/`` renamed ``package-from-sdist/``."""
    target = CACHE / f"{distribution}-{version}"
    if (target / "tests").is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        download = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        done = subprocess.run(
            [*download, f"{distribution}=={version}", "-d", work], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"could not download the {distribution} {version} sdist:\n{done.stderr}"
        (archive_path,) = Path(work).glob("*.tar.gz")
        with tarfile.open(archive_path) as archive:
            if hasattr(tarfile, "data_filter"):  # Pythons with the extraction filters (PEP 706)
                archive.extractall(work, filter="data")
            else:
                archive.extractall(work)
        (unpacked,) = (p for p in Path(work).iterdir() if p.is_dir())
        (unpacked / package).rename(unpacked / f"{package}-from-sdist")
        shutil.move(str(unpacked), target)  # complete, or not there at all
    return target
