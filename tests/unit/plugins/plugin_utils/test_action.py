"""The argument spec read from module documentation: each documented key, fragments, defaults."""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import (
    DocumentationError,
    argument_spec_of_options,
    module_argument_spec,
    module_defaults,
    module_documentation,
    resolve_documentation,
)


@pytest.mark.parametrize(("documented", "spec"), [
    ({"description": "x", "type": "str"}, {"type": "str"}),
    ({"description": ["x", "y"], "version_added": "0.2.0", "type": "int", "default": 3}, {"type": "int", "default": 3}),
    ({"description": "x", "type": "list", "elements": "str", "default": ["a"]},
     {"type": "list", "elements": "str", "default": ["a"]}),
    ({"description": "x", "type": "str", "choices": ["a", "b"], "default": "a"},
     {"type": "str", "choices": ["a", "b"], "default": "a"}),
    ({"description": "x", "type": "str", "choices": {"a": "first", "b": "second"}},
     {"type": "str", "choices": ["a", "b"]}),
    ({"description": "x", "type": "list", "elements": "raw", "required": True},
     {"type": "list", "elements": "raw", "required": True}),
    ({"description": "x", "type": "str", "aliases": ["y"], "required": False},
     {"type": "str", "aliases": ["y"], "required": False}),
    ({"description": "x", "type": "bool", "default": False}, {"type": "bool", "default": False}),
    ({"description": "x", "type": "dict", "default": {}}, {"type": "dict", "default": {}}),
    ({"description": "x"}, {}),
], ids=["type", "prose-dropped", "list", "choices", "choice-descriptions", "required", "aliases", "false-default",
        "empty-dict-default", "no-type"])
def test_each_documented_key_becomes_the_spec_key(documented, spec) -> None:
    assert argument_spec_of_options({"o": documented}) == {"o": spec}


def test_suboptions_become_options_at_every_level() -> None:
    port = {"description": "p", "type": "int", "default": 5061}
    documented = {"peer": {"description": "x", "type": "dict", "suboptions": {
        "host": {"description": "h", "type": "str", "required": True},
        "tls": {"description": "t", "type": "dict", "suboptions": {"port": port}}}}}
    assert argument_spec_of_options(documented) == {"peer": {"type": "dict", "options": {
        "host": {"type": "str", "required": True},
        "tls": {"type": "dict", "options": {"port": {"type": "int", "default": 5061}}}}}}


def test_the_spec_owns_its_defaults() -> None:
    documented = {"o": {"description": "x", "type": "list", "default": ["a"]}}
    argument_spec_of_options(documented)["o"]["default"].append("b")
    assert documented["o"]["default"] == ["a"]
    module_argument_spec("fix_crl_host")["bypass"]["default"].append("changed")
    assert module_argument_spec("fix_crl_host")["bypass"]["default"] == []


def test_an_option_that_is_not_a_mapping_is_named() -> None:
    with pytest.raises(DocumentationError, match=r"^m: options\.peer\.suboptions\.port: expected a mapping, got 5"):
        argument_spec_of_options({"peer": {"description": "x", "suboptions": {"port": 5}}}, where="m: options")


def test_no_options_is_an_empty_spec() -> None:
    assert argument_spec_of_options(None) == {}
    assert module_argument_spec("winhttp_proxy_info") == {}


def test_the_collections_fragments_are_merged_and_others_left_out() -> None:
    doc = resolve_documentation("""
options:
  a: {description: x, type: str}
attributes:
  check_mode: {details: Reads only.}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - crlfix.windows._shared
""")
    assert doc["options"] == {"a": {"description": "x", "type": "str"}}
    assert doc["attributes"]["check_mode"] == {"support": "full", "details": "Reads only."}  # the module's wins
    assert doc["attributes"]["platform"] == {"platforms": "windows"}
    assert doc["attributes"]["diff_mode"] == {"support": "none"}  # the shared default
    with_diff = resolve_documentation("""
attributes:
  diff_mode: {support: full}
extends_documentation_fragment: [crlfix.windows._shared, crlfix.windows._shared.read_only]
""")
    assert with_diff["attributes"]["diff_mode"] == {"support": "full"}  # the module's own wins over the fragment's
    assert with_diff["attributes"]["check_mode"]["details"].startswith("The module only reads")


def test_module_defaults_name_every_option() -> None:
    defaults = module_defaults("fix_crl_host")
    assert defaults["state"] == "present" and defaults["views"] == ["native", "wow6432"]
    assert defaults["proxy"] is None and defaults["peers"] is None  # no default: "not set"
    assert set(defaults) == set(module_documentation("fix_crl_host")["options"])


# The options the shared doc fragments give (plugins/doc_fragments/_shared.py), as argument specs.
PROBE = {"probe_samples": {"type": "int", "default": 3}, "probe_timeout_ms": {"type": "int", "default": 20000},
         "max_handshake_ms": {"type": "int", "default": 1000}, "check_revocation": {"type": "bool", "default": True}}
CERTIFICATES = {"cert_stores": {"type": "list", "elements": "str", "default": ["My"]},
                "chain_stores": {"type": "list", "elements": "str", "default": ["CA", "Root"]},
                "cert_thumbprints": {"type": "list", "elements": "str", "default": []},
                "cert_subject": {"type": "str"},
                "cert_ekus": {"type": "list", "elements": "str", "default": []},
                "expiry_warning_days": {"type": "int", "default": 30}}
CRL_FETCH = {"crl_timeout_ms": {"type": "int", "default": 15000}}


@pytest.mark.parametrize(("module", "shared"), [
    ("tls_probe", PROBE), ("fix_crl_restart", PROBE), ("fix_crl_host", {**PROBE, **CERTIFICATES, **CRL_FETCH}),
    ("cert_revocation_info", CERTIFICATES), ("crl_retrieval_check", CRL_FETCH),
])
def test_a_shared_setting_has_one_name_and_one_spec_in_every_module(module, shared) -> None:
    spec = module_argument_spec(module)
    assert {name: spec.get(name) for name in shared} == shared
    # No module keeps an old name of a shared setting.
    assert not set(spec) & {"samples", "timeout_ms", "mutual", "stores", "thumbprints", "subject", "ekus"}


def test_a_fragment_variable_is_merged_and_the_module_s_own_keys_win() -> None:
    doc = resolve_documentation("""
options:
  crl_timeout_ms: {description: mine, default: 5000}
extends_documentation_fragment: [crlfix.windows._shared.crl_fetch, crlfix.windows._shared.probe]
""")
    assert doc["options"]["crl_timeout_ms"] == {"description": "mine", "default": 5000, "type": "int"}
    assert argument_spec_of_options(doc["options"]) == {"crl_timeout_ms": {"type": "int", "default": 5000}, **PROBE}


@pytest.mark.parametrize("name", ["crlfix.windows._no_such_fragment", "crlfix.windows._shared.no_such_variable"])
def test_an_unknown_fragment_of_this_collection_is_named(name) -> None:
    with pytest.raises(DocumentationError, match=rf"^extends_documentation_fragment: no doc fragment '{name}'"):
        resolve_documentation(f"extends_documentation_fragment: [{name}]")
