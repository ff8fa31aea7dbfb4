"""The code cites the rules it implements by their section of docs/reference/specification.md:
every section cited exists, and every section is cited by some module."""

from __future__ import annotations

import re
from pathlib import Path

from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs/reference/specification.md"
CITATION = re.compile(r"docs/reference/specification\.md#([a-z0-9-]+)")


def sections() -> set[str]:
    headings = re.findall(r"^## (.+)$", PAGE.read_text(), flags=re.MULTILINE)
    return {slugify(heading, "-") for heading in headings}


def citations() -> dict[str, set[str]]:
    cited: dict[str, set[str]] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        for anchor in CITATION.findall(path.read_text()):
            cited.setdefault(anchor, set()).add(str(path.relative_to(ROOT)))
    return cited


def test_every_cited_section_exists() -> None:
    missing = {anchor: paths for anchor, paths in citations().items() if anchor not in sections()}
    assert not missing, f"cited sections the page does not have: {missing}"


def test_the_rules_of_each_domain_are_cited_by_the_code_that_implements_them() -> None:
    cited = citations()
    for anchor, module in {
        "deltas": "app/rules/deltas.py",
        "deltaone": "app/rules/deltaone.py",
        "contributors": "app/rules/contributors.py",
        "attestations": "app/services/attestations.py",
        "lineage": "app/services/lineage.py",
        "predictions-and-the-cache": "app/services/predictions.py",
        "remembered-state": "app/adapters/memory.py",
        "ab-tests": "app/rules/ab_stats.py",
        "access": "app/api/auth.py",
    }.items():
        assert module in cited.get(anchor, set()), (anchor, module)
