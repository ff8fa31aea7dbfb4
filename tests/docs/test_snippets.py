"""Every snippet a user is shown runs. The Python and shell blocks of the README and of every docs
page are executed against a real service, with the SDK installed from its wheel; a block that
cannot run here says why on the line before it (`<!-- not-run: reason -->`), and the reason must
be one this test can check. Blocks that include a file (`--8<-- "examples/..."`) are the examples,
run by test_examples.py.

A page runs as a reader would run it, in one order: its shell blocks before the first Python
block (they set the environment), then its Python blocks as one program, then its other shell
blocks as one script, each in a fresh folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import ROOT
from tests.docs.conftest import UserService
from tests.services_under_test import free_port, running

PAGES = [
    ROOT / "README.md",
    ROOT / "examples" / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
]
RUN = {"python", "sh", "bash"}
FENCE = re.compile(r"^```(\w*)")
NOT_RUN = re.compile(r"^<!-- not-run: (.+) -->$")
WALKTHROUGH = re.compile(
    r"--8<-- \[start:walkthrough\] -->\n(.*?)<!-- --8<-- \[end:walkthrough\]", re.S
)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str
    not_run: str | None


def blocks(page: Path, text: str | None = None) -> list[Block]:
    found: list[Block] = []
    lines = (page.read_text() if text is None else text).splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start, body = index, []
        index += 1
        while not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        reason = NOT_RUN.match(before.strip())
        found.append(
            Block(
                page,
                start + 1,
                match.group(1),
                "\n".join(body) + "\n",
                reason.group(1) if reason else None,
            )
        )
    return found


def runnable(found: list[Block]) -> list[Block]:
    return [b for b in found if b.language in RUN and b.not_run is None and not _includes(b)]


def _includes(block: Block) -> list[str]:
    return re.findall(r'^--8<-- "([^"]+)"$', block.code, re.M)


def test_every_block_runs_or_says_a_checkable_reason() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for page in PAGES:
        for block in blocks(page):
            where = f"{page.relative_to(ROOT)}:{block.line}"
            for included in _includes(block):
                assert included.startswith("examples/"), f"{where}: {included} is run by no test"
                assert (ROOT / included).is_file(), where
            reason = block.not_run
            if reason is None:
                continue
            if reason.startswith("tested by "):
                assert (ROOT / reason.split()[2]).is_file(), where
            elif reason.startswith("run by CI"):
                for command in block.code.splitlines():
                    assert command.split("#")[0].strip() in ci, f"{where}: {command} not in .ci/run"
            else:
                assert reason in {
                    "starts the server; the walkthrough test starts it this way",
                    "needs a Docker engine; "
                    "CI validates the compose file with docker-compose config",
                }, f"{where}: {reason}"


def run_page(
    found: list[Block], python: Path, env: dict[str, str], workdir: Path, substitute: dict[str, str]
) -> str:
    """Leading shell blocks, then the Python blocks, then the other shell blocks."""
    workdir.mkdir(parents=True, exist_ok=True)

    def code(block: Block) -> str:
        text = block.code
        for old, new in substitute.items():
            text = text.replace(old, new)
        return text

    first_python = next((i for i, b in enumerate(found) if b.language == "python"), len(found))
    leading = [code(b) for b in found[:first_python] if b.language != "python"]
    python_code = "\n".join(code(b) for b in found if b.language == "python")
    trailing = [code(b) for b in found[first_python:] if b.language != "python"]
    printed = []
    if leading:
        script = "set -euo pipefail\n" + "\n".join(leading) + "\nprintf '\\0--env--\\0'; env -0"
        shell = subprocess.run(
            ["bash", "-c", script],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shell.returncode == 0, shell.stdout + shell.stderr
        output, _, exported = shell.stdout.partition("\0--env--\0")
        printed.append(output)
        env = dict(item.split("=", 1) for item in exported.split("\0") if "=" in item)
    for language, text in (("python", python_code), ("sh", "\n".join(trailing))):
        if not text.strip():
            continue
        command = (
            [str(python), "-c", text]
            if language == "python"
            else ["bash", "-c", "set -euo pipefail\n" + text]
        )
        finished = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600
        )
        assert finished.returncode == 0, (
            f"{language}:\n{finished.stdout}\n{finished.stderr[-5000:]}"
        )
        printed.append(finished.stdout)
    return "\n".join(printed)


# Every docs page with a snippet to run (the README's walkthrough has a test of its own).
DOCS_PAGES = [page for page in PAGES if page.parent != ROOT and runnable(blocks(page))]


@pytest.mark.parametrize("page", DOCS_PAGES, ids=lambda page: page.stem)
def test_a_docs_page_runs(
    page: Path, user_python: Path, user_service: UserService, database_url: str, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOKUSAI_")},
        "PATH": os.pathsep.join(
            [str(user_python.parent), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
        "HOKUSAI_BASE_URL": user_service.url,
        "HOKUSAI_API_KEY": user_service.admin_key,
        "HOKUSAI_DATABASE_URL": database_url,  # for `hokusai-api` commands on the service's host
        "HOME": str(tmp_path),
    }
    printed = run_page(runnable(blocks(page)), user_python, env, tmp_path / "work", {})
    assert printed.strip(), "the page's snippets printed nothing"


def test_the_readme_walkthrough_against_make_runs_embedded_defaults(
    user_python: Path, tmp_path: Path
) -> None:
    """As a newcomer: `make run`'s server on its embedded defaults (SQLite, a local MLflow store,
    no Redis) in a fresh folder, then the README's walkthrough, word for word but for the port."""
    section = WALKTHROUGH.search((ROOT / "README.md").read_text())
    assert section is not None
    found = runnable(blocks(ROOT / "README.md", section.group(1)))
    assert [b.language for b in found] == ["sh", "python", "python", "python", "python", "sh"]
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    server_env = {**clean, "HOKUSAI_PORT": str(port)}
    url = f"http://127.0.0.1:{port}"
    with running(
        [str(Path(sys.executable).parent / "hokusai-api"), "serve", "--migrate"],
        server_env,
        tmp_path / "make-run.log",
        url,
        timeout_s=120,
        what="make run",
        cwd=tmp_path,
    ):
        printed = run_page(
            found,
            user_python,
            {**clean, "HOME": str(tmp_path)},
            tmp_path,
            {"http://127.0.0.1:8000": url},
        )
        before = sorted(path.name for path in tmp_path.iterdir())
        again = run_page(  # a reader runs it twice: it works, and promotes no rejected version
            found,
            user_python,
            {**clean, "HOME": str(tmp_path)},
            tmp_path,
            {"http://127.0.0.1:8000": url},
        )
        after = sorted(path.name for path in tmp_path.iterdir())
    assert "DeltaOne cooldown_active" in again
    assert before == after, "the walkthrough writes nothing into the folder it runs in"
    assert "v1: accuracy 0.6" in printed
    assert "pp measured, DeltaOne accepted" in printed  # on the held benchmark, in the sandbox
    assert '-->|"+' in printed  # the Mermaid lineage
    assert "accepted (measured)" in printed
    assert '"version":2,"predictions":[' in printed
