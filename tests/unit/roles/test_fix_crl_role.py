"""The fix_crl role's contract files: argument spec, defaults, the generated README table, variable names."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
ROLE = REPO_ROOT / "roles" / "fix_crl"
SPEC = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
# Variables the role sets for the report or that only the playbook reads; everything else must be in the spec.
NOT_ROLE_INPUTS = {"fix_crl_record"}
PLAYBOOK_VARS = {"fix_crl_hosts", "fix_crl_serial", "fix_crl_max_fail_percentage", "fix_crl_report_dir",
                 "fix_crl_fail_statuses", "fix_crl_rollout_stopped", "fix_crl_report",
                 "fix_crl_failed_hosts"}


def load_script():
    spec = importlib.util.spec_from_file_location("role_readme", REPO_ROOT / "scripts" / "role_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


role_readme = load_script()


def test_readme_variable_table_is_generated_from_the_argument_spec(capsys) -> None:
    assert role_readme.main(["--check", str(ROLE)]) == 0, capsys.readouterr().err
    readme = (ROLE / "README.md").read_text()
    for name in SPEC:
        assert f"| `{name}` |" in readme


def test_check_reports_a_stale_readme(tmp_path, capsys) -> None:
    role = tmp_path / "role"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n      x_a:\n        description: O(x_a) is V(1)|2.\n"
        "        type: int\n        default: 1\n")
    (role / "README.md").write_text(f"intro\n{role_readme.BEGIN}\nold\n{role_readme.END}\nrest\n")
    assert role_readme.main(["--check", str(role)]) == 1
    assert "is out of date" in capsys.readouterr().err
    assert role_readme.main([str(role)]) == 0
    text = (role / "README.md").read_text()
    assert text.startswith("intro\n") and text.endswith(f"{role_readme.END}\nrest\n")
    assert "| `x_a` | int | `1` |  | `x_a` is `1`\\|2. |" in text
    assert role_readme.main(["--check", str(role)]) == 0


def test_a_readme_without_markers_is_an_error_naming_the_file(tmp_path, capsys) -> None:
    role = tmp_path / "role"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text("argument_specs:\n  main:\n    options: {}\n")
    (role / "README.md").write_text("no markers\n")
    assert role_readme.main([str(role)]) == 2
    assert f"{role / 'README.md'}: needs exactly one" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("markup", "markdown"),
    [
        ("O(fix_crl_proxy=)", "`fix_crl_proxy=`"),
        ("V(present) and C(netsh winhttp reset proxy)", "`present` and `netsh winhttp reset proxy`"),
        ("M(crlfix.windows.tls_probe) RV(all_pass)", "`crlfix.windows.tls_probe` `all_pass`"),
        ("R(the role,ansible_collections.crlfix.windows.docsite.fix_crl)", "the role"),
        ("I(never) B(ever)", "*never* **ever**"),
        ("C(host:port) or C(a|b)", "`host:port` or `a\\|b`"),
        ("C(%windir%\\System32\\netsh.exe (64-bit))", "`%windir%\\System32\\netsh.exe (64-bit)`"),
    ],
)
def test_markup_to_markdown(markup, markdown) -> None:
    assert role_readme.markup_to_markdown(markup) == markdown


def test_defaults_are_exactly_the_documented_defaults() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults == {name: option["default"] for name, option in SPEC.items() if "default" in option}


def test_every_option_is_described_typed_and_prefixed() -> None:
    for name, option in SPEC.items():
        assert name.startswith("fix_crl_"), name
        assert option.get("description"), name
        assert option.get("type"), name
        if option["type"] == "list":
            assert option.get("elements"), name


def test_every_fix_crl_variable_the_role_reads_is_in_the_argument_spec() -> None:
    used = set()
    for path in (ROLE / "tasks").glob("*.yml"):
        used |= set(re.findall(r"(?<![_\w.])fix_crl_[a-z_]+", path.read_text()))
    assert used - NOT_ROLE_INPUTS - set(SPEC) == set()
    assert set(SPEC) - used == set(), "documented but never read"


def test_the_playbook_reads_only_role_or_documented_playbook_variables() -> None:
    playbook = (REPO_ROOT / "playbooks" / "fix-crl.yml").read_text()
    used = set(re.findall(r"(?<![_\w.])fix_crl_[a-z_]+", playbook))
    assert used - NOT_ROLE_INPUTS - PLAYBOOK_VARS - set(SPEC) == set()
    internal = {"fix_crl_rollout_stopped", "fix_crl_report", "fix_crl_failed_hosts"}
    for name in PLAYBOOK_VARS - internal:
        assert f"#   {name}" in playbook, f"{name} is not documented in the playbook's header"
