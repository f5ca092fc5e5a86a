"""Plugin documentation that YAML would silently cut: a `` #`` inside a plain scalar starts a comment, so
"a PKCS #7 bundle" documented as "a PKCS". ansible-doc and ansible-test accept the cut text; this does not."""

from __future__ import annotations

import ast
import re

import pytest
import yaml

from tests.integration.docs import _snippets

# A line whose text before " #" holds no quote and no comment start: YAML reads the rest as a comment.
_CUT = re.compile(r"^[^#'\"]*\S\s+#")


def _module_docs(path) -> dict[str, str]:
    return {node.targets[0].id: node.value.value for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("DOCUMENTATION", "RETURN")}


def _filter_docs(path) -> dict[str, str]:
    text = path.read_text()
    # The sidecar's DOCUMENTATION and RETURN as written (EXAMPLES is a literal block: comments there are YAML's own).
    return {"DOCUMENTATION+RETURN": text[:text.index("EXAMPLES:")] + text[text.index("RETURN:"):]}


@pytest.mark.parametrize("path", _snippets.modules() + _snippets.filters(), ids=lambda p: p.name)
def test_no_documentation_line_is_cut_by_a_yaml_comment(path):
    docs = _module_docs(path) if path.suffix == ".py" else _filter_docs(path)
    assert docs
    cut = [f"{name}:{number}: {line.strip()}" for name, text in docs.items()
           for number, line in enumerate(text.splitlines(), 1) if _CUT.match(line)]
    assert not cut, "' #' starts a YAML comment here (write 'PKCS#7', or quote the text):\n" + "\n".join(cut)
    for text in docs.values():
        yaml.safe_load(text)


def test_the_check_finds_a_cut_line():
    assert _CUT.match("      - V(certificate) (DER, PEM or a PKCS #7 bundle) or V(none).")
    assert not _CUT.match("      - V(certificate) (DER, PEM or a PKCS#7 bundle) or V(none).")
    assert not _CUT.match("  sample: 'a # inside quotes'")
