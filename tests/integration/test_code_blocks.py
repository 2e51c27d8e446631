"""Every code block of the README, the user guides and the diagnostics runs, so that none can rot.

A document's blocks run in order, in one empty folder, with this environment's ``bin`` first on PATH:

- a Python block with a file name (Markdown ```` ```python title="app.py" ````, reStructuredText
  ``.. code-block:: python`` with ``:caption: app.py``) is written to that file, for later blocks;
- any other Python block runs as a script, a shell block (``sh``) with ``bash -euo pipefail``;
- a block whose first line is ``# not run by the tests: <reason>`` is left out, with its reason
  (installs from the package index, starts the local stack, a minute of benchmark...), and counted.

Each run must exit 0 and write no traceback.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT

NOT_RUN = "# not run by the tests:"
MARKDOWN_BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RST_BLOCK = re.compile(
    r"^(?P<indent> *)\.\. code-block:: (?P<language>\w+)\n"
    r"(?P<options>(?:(?P=indent) +:\w+: [^\n]*\n)*)\n"
    r"(?P<body>(?:(?P=indent) +[^\n]*\n|\n)+)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Block:
    language: str
    file_name: str | None
    code: str
    line: int


def markdown_blocks(text: str) -> list[Block]:
    blocks = []
    for match in MARKDOWN_BLOCK.finditer(text):
        title = re.search(r'title="([^"]+)"', match.group(2))
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(match.group(1), title.group(1) if title else None, match.group(3), line))
    return blocks


def rst_blocks(text: str) -> list[Block]:
    blocks = []
    for match in RST_BLOCK.finditer(text):
        caption = re.search(r":caption: (\S+)", match.group("options"))
        line = text.count("\n", 0, match.start()) + 1
        code = textwrap.dedent(match.group("body")).strip("\n") + "\n"
        blocks.append(Block(match.group("language"), caption.group(1) if caption else None, code, line))
    return blocks


def guide(module: str) -> str:
    return importlib.import_module(module).__doc__ or ""


DOCUMENTS = {
    "README.md": lambda: markdown_blocks((ROOT / "README.md").read_text()),
    "docs/diagnostics.md": lambda: markdown_blocks((ROOT / "docs" / "diagnostics.md").read_text()),
    "otel_resilience.pybreaker": lambda: rst_blocks(guide("otel_resilience.pybreaker")),
    "otel_resilience.tenacity": lambda: rst_blocks(guide("otel_resilience.tenacity")),
    "otel_resilience.backoff": lambda: rst_blocks(guide("otel_resilience.backoff")),
    "otel_resilience.purgatory": lambda: rst_blocks(guide("otel_resilience.purgatory")),
    "otel_resilience.circuitbreaker": lambda: rst_blocks(guide("otel_resilience.circuitbreaker")),
    "otel_resilience.aiobreaker": lambda: rst_blocks(guide("otel_resilience.aiobreaker")),
    "otel_resilience.transitions": lambda: rst_blocks(guide("otel_resilience.transitions")),
    "otel_resilience.automat": lambda: rst_blocks(guide("otel_resilience.automat")),
    "otel_resilience.statemachine": lambda: rst_blocks(guide("otel_resilience.statemachine")),
}


def run(block: Block, folder: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OTEL_LOGS_EXPORTER": "none"}
    if block.language == "python":
        script = folder / f"block_{block.line}.py"
        script.write_text(block.code)
        command = [sys.executable, str(script)]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    return subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.mark.parametrize("document", list(DOCUMENTS))
def test_every_code_block_runs(document: str, tmp_path: Path) -> None:
    blocks = DOCUMENTS[document]()
    assert blocks, f"{document}: no code block found"
    ran, left_out = 0, []
    for block in blocks:
        assert block.language in ("python", "sh"), (
            f"{document}:{block.line}: unknown language {block.language}"
        )
        first_line = block.code.splitlines()[0] if block.code.strip() else ""
        if first_line.startswith(NOT_RUN):
            reason = first_line[len(NOT_RUN) :].strip()
            assert reason, f"{document}:{block.line}: a block left out must say why"
            left_out.append(f"line {block.line}: {reason}")
            continue
        if block.file_name is not None:
            (tmp_path / block.file_name).write_text(block.code)
            continue
        done = run(block, tmp_path)
        assert done.returncode == 0, (
            f"{document}:{block.line} failed:\n{block.code}\n{done.stdout}{done.stderr}"
        )
        assert "Traceback" not in done.stderr, f"{document}:{block.line}:\n{done.stderr}"
        ran += 1
    print(f"\n{document}: {ran} blocks ran; left out: {left_out or 'none'}")
    assert ran, f"{document}: no block ran"
