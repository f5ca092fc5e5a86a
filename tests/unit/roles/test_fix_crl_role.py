"""The fix_crl role's contract files: generated from the one task's documentation, variable names, README."""

from __future__ import annotations

import importlib.util
import re

import pytest
import yaml

from tests.conftest import REPO_ROOT

ROLE = REPO_ROOT / "roles" / "fix_crl"
SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
# Variables the role sets for the report or that only the playbook reads; everything else must be in the spec.
NOT_ROLE_INPUTS = {"fix_crl_record", "fix_crl_record_restarted"}
PLAYBOOK_VARS = {"fix_crl_hosts", "fix_crl_serial", "fix_crl_max_fail_percentage", "fix_crl_report_dir",
                 "fix_crl_fail_statuses", "fix_crl_rollout_stopped", "fix_crl_report",
                 "fix_crl_failed_hosts"}


def load_script():
    spec = importlib.util.spec_from_file_location("generate_role", REPO_ROOT / "scripts" / "generate_role.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate_role = load_script()


def test_the_generated_files_are_current(capsys) -> None:
    assert generate_role.main(["--check"]) == 0, capsys.readouterr().err


def _fake_role(tmp_path):
    role = tmp_path / "fix_crl"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    mark = generate_role.OPTIONS_MARK.format(script=generate_role.SCRIPT, module="fix_crl_host")
    (role / "meta" / "argument_specs.yml").write_text(f"---\nargument_specs:\n  main:\n{mark}\n    old: 1\n")
    (role / "README.md").write_text(f"intro\n{generate_role.BEGIN}\nold\n{generate_role.END}\nrest\n")
    return role


DOC = {"options": {
    "a": {"description": "O(a) is V(1)|2; see O(b=x) and O(other).", "type": "int", "default": 1},
    "b": {"description": ["Unset means derived.", "A long line " + "word " * 40], "type": "list", "elements": "str"},
    "c": {"description": "Choice: #1 of two; RV(path) names it.", "type": "str", "choices": ["x", "y"], "default": "x"},
}}


def test_check_reports_stale_files_and_generation_writes_them(tmp_path, capsys) -> None:
    role = _fake_role(tmp_path)
    assert generate_role.main(["--check"], roles_dir=tmp_path, documentation=lambda module: DOC) == 1
    err = capsys.readouterr().err
    for name in ("argument_specs.yml", "main.yml", "README.md"):
        assert f"{name} is stale; run make generate" in err
    assert generate_role.main([], roles_dir=tmp_path, documentation=lambda module: DOC) == 0
    assert generate_role.main(["--check"], roles_dir=tmp_path, documentation=lambda module: DOC) == 0

    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
    assert list(spec) == ["options"]  # the old generated part is gone, the hand-written head kept
    assert spec["options"]["fix_crl_a"] == {"description": ["O(fix_crl_a) is V(1)|2; see O(fix_crl_b=x) and O(other)."],
                                            "type": "int", "default": 1}
    assert spec["options"]["fix_crl_b"]["description"][1] == ("A long line " + "word " * 40).strip()
    # The role has no return values: RV() names the module's.
    assert spec["options"]["fix_crl_c"]["description"] == [
        "Choice: #1 of two; RV(crlfix.windows.fix_crl_host#module:path) names it."]
    assert max(len(line) for line in (role / "meta" / "argument_specs.yml").read_text().splitlines()) <= 120
    assert yaml.safe_load((role / "defaults" / "main.yml").read_text()) == {"fix_crl_a": 1, "fix_crl_c": "x"}
    assert "#   fix_crl_b" in (role / "defaults" / "main.yml").read_text()
    readme = (role / "README.md").read_text()
    assert readme.startswith("intro\n") and readme.endswith(f"{generate_role.END}\nrest\n")
    assert "| `fix_crl_a` | int | `1` |  | `fix_crl_a` is `1`\\|2; see `fix_crl_b=x` and `other`. |" in readme
    assert "| `fix_crl_b` | list of str | *(none)* |  | Unset means derived.<br>A long line" in readme
    assert "| `fix_crl_c` | str | `x` | `x`, `y` | Choice: #1 of two; `path` names it. |" in readme


def test_a_file_without_its_marker_is_an_error_naming_the_file(tmp_path, capsys) -> None:
    role = _fake_role(tmp_path)
    (role / "README.md").write_text("no markers\n")
    assert generate_role.main([], roles_dir=tmp_path, documentation=lambda module: DOC) == 2
    assert f"{role / 'README.md'}: needs exactly one" in capsys.readouterr().err
    (role / "meta" / "argument_specs.yml").write_text("argument_specs: {}\n")
    assert generate_role.main([], roles_dir=tmp_path, documentation=lambda module: DOC) == 2
    assert f"{role / 'meta' / 'argument_specs.yml'}: needs exactly one line" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("markup", "markdown"),
    [
        ("O(fix_crl_proxy=)", "`fix_crl_proxy=`"),
        ("V(present) and C(netsh winhttp reset proxy)", "`present` and `netsh winhttp reset proxy`"),
        ("M(crlfix.windows.tls_probe) RV(all_pass)", "`crlfix.windows.tls_probe` `all_pass`"),
        ("R(the role,ansible_collections.crlfix.windows.docsite.fix_crl)", "the role"),
        ("RV(crlfix.windows.fix_crl_host#module:record_path) O(crlfix.windows.tls_probe#module:peers)",
         "`record_path` `peers`"),
        ("I(never) B(ever)", "*never* **ever**"),
        ("C(host:port) or C(a|b)", "`host:port` or `a\\|b`"),
        ("C(%windir%\\System32\\netsh.exe (64-bit))", "`%windir%\\System32\\netsh.exe (64-bit)`"),
    ],
)
def test_markup_to_markdown(markup, markdown) -> None:
    assert generate_role.markup_to_markdown(markup) == markdown


def test_every_option_is_described_typed_and_prefixed() -> None:
    for name, option in SPEC.items():
        assert name.startswith("fix_crl_"), name
        assert option.get("description"), name
        assert option.get("type"), name
        if option["type"] == "list":
            assert option.get("elements"), name


def test_every_fix_crl_variable_the_role_reads_is_in_the_argument_spec() -> None:
    # The role's one task passes options_from_vars: fix_crl_, so its action reads fix_crl_<option> for every
    # option of fix_crl_host but that one; anything else a task file names must be documented too.
    task = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())[0]["crlfix.windows.fix_crl_host"]
    assert task == {"options_from_vars": "fix_crl_"}
    options = generate_role.module_documentation("fix_crl_host")["options"]
    read = {f"fix_crl_{name}" for name in options if name not in generate_role.NOT_ROLE_VARIABLES}
    assert read == set(SPEC), "documented but never read, or read but not documented"
    for path in (ROLE / "tasks").glob("*.yml"):
        named = set(re.findall(r"(?<![_\w.])fix_crl_[a-z0-9_]+", path.read_text())) - {"fix_crl_"}
        assert named - NOT_ROLE_INPUTS - set(SPEC) == set(), path


def test_the_playbook_reads_only_role_or_documented_playbook_variables() -> None:
    playbook = (REPO_ROOT / "playbooks" / "fix-crl.yml").read_text()
    used = set(re.findall(r"(?<![_\w.])fix_crl_[a-z0-9_]+", playbook))
    assert used - NOT_ROLE_INPUTS - PLAYBOOK_VARS - set(SPEC) == set()
    internal = {"fix_crl_rollout_stopped", "fix_crl_report", "fix_crl_failed_hosts"}
    for name in PLAYBOOK_VARS - internal:
        assert f"#   {name}" in playbook, f"{name} is not documented in the playbook's header"
