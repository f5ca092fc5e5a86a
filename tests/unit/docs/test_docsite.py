"""The docsite's pages (docs/docsite) and the references to them: what `make docs` builds, checked without Sphinx.

`make docs` (scripts/docs.sh) renders the site with antsibull-docs and fails on a reference to a label of this
collection that does not exist; this keeps the same promise in `make test`, which does not build the site: every
page the toctree names exists and defines the label ``ansible_collections.crlfix.windows.docsite.<page>``, every
``R(text,label)`` in the plugins' and the role's documentation names an existing page or plugin, and every ``L()``
link is an absolute http(s) URL.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO_ROOT

DOCSITE = REPO_ROOT / "docs" / "docsite"
PREFIX = "ansible_collections.crlfix.windows."
_LABEL = re.compile(r"^\.\. _(?P<label>[\w.\-]+):\s*$", re.MULTILINE)
_REF = re.compile(r"\bR\((?P<text>[^,()]*),(?P<target>[^()]*)\)")
_LINK = re.compile(r"\bL\((?P<text>[^,()]*),(?P<url>[^()]*)\)")


def _documented_files() -> list:
    return sorted([*(REPO_ROOT / "plugins" / "modules").glob("*.py"), *(REPO_ROOT / "plugins" / "filter").glob("*.yml"),
                   *(REPO_ROOT / "plugins" / "doc_fragments").glob("*.py"),
                   *(REPO_ROOT / "roles").glob("*/meta/argument_specs.yml")])


def _pages() -> list[str]:
    sections = yaml.safe_load((DOCSITE / "extra-docs.yml").read_text())["sections"]
    return [page for section in sections for page in section["toctree"]]


def _labels() -> set[str]:
    labels = {m["label"] for path in (DOCSITE / "rst").glob("*.rst") for m in _LABEL.finditer(path.read_text())}
    plugins = {f"{PREFIX}{path.stem}_module" for path in (REPO_ROOT / "plugins" / "modules").glob("*.py")}
    plugins |= {f"{PREFIX}{path.stem}_filter" for path in (REPO_ROOT / "plugins" / "filter").glob("*.yml")}
    plugins |= {f"{PREFIX}{path.parent.parent.name}_role" for path in (REPO_ROOT / "roles").glob("*/meta")}
    return labels | plugins


def resolve(text: str, labels: set[str]) -> list[str]:
    """The R() targets of this collection in ``text`` that are not in ``labels``, and the L() URLs that are not
    absolute http(s) ones."""
    unresolved = [m["target"].strip() for m in _REF.finditer(text)
                  if m["target"].strip().startswith(PREFIX) and m["target"].strip() not in labels]
    return unresolved + [m["url"].strip() for m in _LINK.finditer(text)
                         if not re.match(r"https?://[^/\s]+", m["url"].strip())]


def test_every_page_of_the_toctree_exists_and_defines_its_label() -> None:
    pages = _pages()
    assert {"fix_crl", "awx", "causes"} <= set(pages)
    assert sorted(path.stem for path in (DOCSITE / "rst").glob("*.rst")) == sorted(pages), "a page not in the toctree"
    for page in pages:
        text = (DOCSITE / "rst" / f"{page}.rst").read_text()
        assert f".. _{PREFIX}docsite.{page}:" in text, page


@pytest.mark.parametrize("path", _documented_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_reference_of_the_documentation_resolves(path) -> None:
    assert resolve(path.read_text(), _labels()) == []


def test_the_module_docs_reference_the_role_guide() -> None:
    assert f"R(fix_crl role,{PREFIX}docsite.fix_crl)" in (REPO_ROOT / "plugins/modules/fix_crl_host.py").read_text()


def test_an_unknown_label_or_a_relative_link_is_reported() -> None:
    labels = _labels()
    text = (f"R(the guide,{PREFIX}docsite.fix_crl) R(x,{PREFIX}docsite.nothing) R(y,{PREFIX}tls_probe_module) "
            "R(Ansible,playbooks_intro) L(site,https://learn.microsoft.com/x) L(file,docs/x.md)")
    assert resolve(text, labels) == [f"{PREFIX}docsite.nothing", "docs/x.md"]
