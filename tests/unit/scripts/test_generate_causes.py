"""scripts/generate_causes.py: the catalogue's pages are made from the catalogue, and kept current."""

from __future__ import annotations

import importlib.util

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._causes import CATALOGUE, UNDETERMINED
from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("generate_causes", REPO_ROOT / "scripts" / "generate_causes.py")
generate_causes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate_causes)


def test_the_generated_pages_are_current(capsys) -> None:
    assert generate_causes.main(["--check"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("cause", [*CATALOGUE, UNDETERMINED], ids=lambda cause: cause.code)
def test_every_cause_is_on_both_pages_with_its_owner(cause) -> None:
    assert f"``{cause.code}``: {cause.title}" in generate_causes.rst_causes()
    assert f"| `{cause.code}` | {cause.title} | {cause.owner} |" in generate_causes.md_causes()


def test_a_page_without_its_marks_is_refused_naming_it(tmp_path) -> None:
    page = tmp_path / "page.md"
    with pytest.raises(SystemExit, match="page.md: the marks"):
        generate_causes.replaced("no marks", generate_causes.MD_MARKS, "x", page)
