"""Every document the code or the docs cite exists in the repository.

Scans the ``.py`` and ``.md`` files of the repository for paths ending in ``.md`` and
resolves each against the repository root and against the citing file's directory (how a
markdown link resolves). Names that are not documents of this repository are listed in
``NOT_DOCUMENTS`` with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SELF = Path(__file__).resolve()
"""Left out of the scan: its examples cite missing documents on purpose."""
SKIPPED_DIRS = frozenset({".git", "demo", "build", "dist", "node_modules", "models", "report"})
CITATION = re.compile(r"(?<![\w./-])([\w./-]*[\w-]\.md)(?![\w])")
NOT_DOCUMENTS: dict[str, str] = {
    "summary.md": "a file `mnbench report` writes",
    "research/slim/nets/mobilenet_v1.md": "in tensorflow/models, cited with its commit",
    "mobilenet_v1.md": "the same TF-Slim file, its directory on the line before",
}


def source_files(root: Path) -> list[Path]:
    """The repository's .py and .md files outside build output and working data."""
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(p in SKIPPED_DIRS or p.endswith((".egg-info", "_cache")) for p in parts):
            continue
        if path.suffix in (".py", ".md") and path.is_file() and path.resolve() != SELF:
            found.append(path)
    return found


def missing_citations(root: Path) -> list[str]:
    """``file:line: cited`` for every cited .md path that resolves to no file."""
    missing: list[str] = []
    for path in source_files(root):
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            for cited in CITATION.findall(line):
                if cited in NOT_DOCUMENTS:
                    continue
                candidates = (root / cited, path.parent / cited)
                if not any(c.is_file() for c in candidates):
                    missing.append(f"{path.relative_to(root)}:{number}: {cited}")
    return missing


def test_every_cited_document_exists() -> None:
    assert missing_citations(ROOT) == []


def test_the_docs_are_there_and_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("architecture", "measurement", "devices", "cost-model"):
        assert (ROOT / "docs" / f"{name}.md").is_file()
        assert f"docs/{name}.md" in readme, name


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("see ARCHITECTURE.md for the contract", ["a.py:1: ARCHITECTURE.md"]),
        ('"""Recipe: docs/devices-adb-ssh.md section 5.3."""', ["a.py:1: docs/devices-adb-ssh.md"]),
        ("[method](method.md#stats) and docs/here.md", ["a.py:1: method.md"]),
        ("writes summary.md beside report.html", []),
    ],
)
def test_the_scan_finds_a_missing_document(tmp_path: Path, text: str, found: list[str]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("# here\n", encoding="utf-8")
    (tmp_path / "a.py").write_text(text + "\n", encoding="utf-8")
    assert missing_citations(tmp_path) == found
