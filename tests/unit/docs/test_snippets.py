"""The examples test's extraction rules (tests/integration/docs/_snippets.py): what is an example, what a marker
must look like, and that every documented example of the checkout is found or marked with a reason."""

from __future__ import annotations

import pytest

from tests.integration.docs import _snippets
from tests.integration.docs._snippets import REPO_ROOT, SnippetError, drop_marked_tasks, markdown_snippets, yaml_shape


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.setattr(_snippets, "REPO_ROOT", tmp_path)

    def write(text: str):
        path = tmp_path / "page.md"
        path.write_text(text)
        return path

    return write


def test_yaml_and_bash_fences_are_examples_text_is_not(page):
    text = "# T\n\n```yaml\n- debug: {}\n```\n\n```\noutput\n```\n\n  ```bash\n  make x\n  ```\n"
    found = markdown_snippets(page(text))
    assert [(s.where, s.kind, s.text, s.skip) for s in found] == [
        ("page.md:4", "yaml", "- debug: {}\n", None), ("page.md:12", "shell", "make x\n", None)]


def test_a_marker_skips_the_next_fence_with_its_reason(page):
    text = "<!-- example: not run in the lab: needs a registry -->\n```bash\npodman push\n```\n"
    found = markdown_snippets(page(text))
    assert found[0].skip == "needs a registry"


@pytest.mark.parametrize("text, error", [
    ("<!-- example: not run in the lab:   -->\n```bash\nx\n```\n", "needs a reason"),
    ("<!-- example: not run in the lab: why -->\n\nprose\n```bash\nx\n```\n", "right before a fence"),
    ("<!-- example: not run in the lab: why -->\n", "precedes no fence"),
    ("<!-- example: not run in the lab: why -->\n```\nout\n```\n", "never run"),
    ("```yaml\n- a: 1\n", "never closed"),
])
def test_bad_markers_and_fences_are_errors(page, text, error):
    with pytest.raises(SnippetError, match=error):
        markdown_snippets(page(text))


def test_a_marked_task_is_left_out_with_its_comments_and_body():
    text = ("- name: one\n  debug: {}\n\n# why it exists\n# example: not run in the lab: IPv6\n- name: two\n"
            "  debug:\n    msg: x\n\n- name: three\n  debug: {}\n")
    kept, skipped = drop_marked_tasks(text, "x")
    assert kept == "- name: one\n  debug: {}\n\n- name: three\n  debug: {}\n"
    assert skipped == ["name: two: IPv6"]


@pytest.mark.parametrize("text", ["- name: one\n  # example: not run in the lab: inside\n  debug: {}\n",
                                  "- name: one\n# example: not run in the lab:\n- name: two\n"])
def test_a_task_marker_inside_a_task_or_without_reason_is_an_error(text):
    with pytest.raises(SnippetError):
        drop_marked_tasks(text, "x")


@pytest.mark.parametrize("text, shape", [("- hosts: all\n  tasks: []\n", "play"), ("- debug: {}\n", "tasks"),
                                         ("all:\n  hosts: {}\n", "data"), ("fix_crl_proxy: p:1\n", "data")])
def test_yaml_shapes(text, shape):
    assert yaml_shape(_snippets.Snippet("x:1", "yaml", text)) == shape


def test_every_documented_example_of_the_checkout_is_found_and_markers_have_reasons():
    """Parses every page, module and filter as the integration test does: a bad marker fails here, without a lab."""
    pages = {p.relative_to(REPO_ROOT).as_posix(): markdown_snippets(p) for p in _snippets.doc_pages()}
    assert all(pages.values()), [p for p, s in pages.items() if not s]
    assert all(s.skip for snippets in pages.values() for s in snippets if s.kind == "yaml" and yaml_shape(s) == "data")
    plugins = [_snippets.module_examples(p) for p in _snippets.modules()] + [
        _snippets.filter_examples(p) for p in _snippets.filters()]
    assert len(plugins) == len(_snippets.modules()) + len(_snippets.filters()) >= 11
    assert all(yaml_shape(s) == "tasks" for s in plugins)
    assert not [s.where for s in plugins if "ansible.windows." in s.text], "examples need no ansible.windows"
