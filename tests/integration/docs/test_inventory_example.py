"""inventory.example/ as Ansible reads it, and the README's "Run it against your servers" when the inventory is
wrong: no lab needed (``ansible-inventory`` and an ``ansible-playbook`` that stops before any connection)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from tests.lab.fleet.process import REPO_ROOT

from ._snippets import reader_checkout, reader_env

VENV_BIN = REPO_ROOT / ".venv" / "bin"
EXAMPLE = REPO_ROOT / "inventory.example"
ROLES = ("lync_servers", "exchange_servers", "adfs_servers")
SITES = ("site_east", "site_west")


@pytest.fixture(scope="module")
def inventory() -> dict:
    result = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(EXAMPLE), "--list"], cwd=REPO_ROOT,
                            env=reader_env(), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def _hosts(inventory: dict, group: str) -> set[str]:
    return set(inventory.get(group, {}).get("hosts", []))


def test_every_server_has_one_role_and_one_site(inventory):
    windows = set().union(*(_hosts(inventory, role) for role in ROLES))
    assert len(windows) >= 6
    for host in windows:
        assert [r for r in ROLES if host in _hosts(inventory, r)].__len__() == 1, host
        assert [s for s in SITES if host in _hosts(inventory, s)].__len__() == 1, host
    assert set(inventory["windows"]["children"]) == set(ROLES)


def _role_spec() -> dict:
    specs = yaml.safe_load((REPO_ROOT / "roles" / "fix_crl" / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


def test_every_role_variable_passes_the_roles_argument_spec(inventory):
    validator = ArgumentSpecValidator(_role_spec())
    hostvars = inventory["_meta"]["hostvars"]
    seen: set[str] = set()
    for host, variables in hostvars.items():
        role_vars = {key: value for key, value in variables.items() if key.startswith("fix_crl_")}
        result = validator.validate(role_vars)
        assert not result.error_messages, f"{host}: {result.error_messages}"
        assert result.validated_parameters["fix_crl_proxy"], host
        seen |= set(role_vars)
    assert {"fix_crl_proxy", "fix_crl_bypass", "fix_crl_tls_port"} <= seen
    ports = {hostvars[h]["fix_crl_tls_port"] for h in _hosts(inventory, "lync_servers")}
    assert ports == {5061}
    assert {hostvars[h]["fix_crl_tls_port"] for h in _hosts(inventory, "adfs_servers")} == {443}


def test_connection_https_with_ca_trust_and_the_password_from_vault(inventory):
    for host, variables in inventory["_meta"]["hostvars"].items():
        assert variables["ansible_connection"] == "winrm", host
        assert (variables["ansible_winrm_scheme"], variables["ansible_port"]) == ("https", 5986), host
        assert variables["ansible_winrm_ca_trust_path"].endswith(".pem"), host
        assert variables["ansible_password"] == "{{ vault_winrm_password }}", host
    vault = yaml.safe_load((EXAMPLE / "group_vars" / "windows" / "vault.yml.example").read_text())
    assert set(vault) == {"vault_winrm_password"}
    connection = (EXAMPLE / "group_vars" / "windows" / "connection.yml").read_text()
    assert "pywinrm[kerberos]" in connection and "ansible_winrm_transport: kerberos" in connection


# -- a checkout without the right inventory: the run stops and names the inventory -------------------------------


@pytest.mark.parametrize("inventory_args, named", [((), "build/lab/inventory.yml"), (("-i", "inventory"), "inventory")])
def test_a_run_without_a_parsable_inventory_stops_and_names_it(tmp_path, inventory_args, named):
    clone = reader_checkout(tmp_path)  # no lab: no build/lab/inventory.yml
    result = subprocess.run([str(VENV_BIN / "ansible-playbook"), *inventory_args, "playbooks/fix-crl.yml",
                             "-l", "lync_servers", "--check"], cwd=clone, env=reader_env(HOME=str(tmp_path)),
                            capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{clone}/{named} as an inventory source" in " ".join(output.split()), output
    assert "No inventory was parsed" in output
    assert "PLAY [" not in output, "a run against no inventory must not start"


def test_an_inventory_without_a_windows_host_stops_and_points_at_dash_i(tmp_path):
    clone = reader_checkout(tmp_path)
    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  hosts: {}\n")
    result = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(empty), "playbooks/fix-crl.yml", "--check"],
                            cwd=clone, env=reader_env(HOME=str(tmp_path)), capture_output=True, text=True,
                            timeout=120, check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert f"No host of the inventory {empty} matches 'all:!localhost'" in output
    assert "with -i" in output
    assert "PLAY [Fix CRL | per host, in batches]" not in output, "the run must stop before the per-host play"
