"""The module documentation, as ansible-doc renders it, is what each action plugin validates with."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._action import (
    argument_spec_of_options,
    module_argument_spec,
)
from tests.conftest import COLLECTIONS_DIR, REPO_ROOT

MODULES = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py"))
# Every plugin of the first release says so; a plugin added later names the release that adds it.
FIRST_RELEASE = "1.0.0"
# module: (version_added, check_mode, diff_mode, platform)
ATTRIBUTES = {
    "cert_revocation_info": (FIRST_RELEASE, "full", "none", "windows"),
    "crl_retrieval_check": (FIRST_RELEASE, "full", "none", "windows"),
    "fix_crl_host": (FIRST_RELEASE, "full", "full", "windows"),
    "fix_crl_report": (FIRST_RELEASE, "full", "none", "posix"),
    "fix_crl_restart": (FIRST_RELEASE, "full", "none", "windows"),
    "tls_probe": (FIRST_RELEASE, "full", "none", "windows"),
    "winhttp_proxy": (FIRST_RELEASE, "full", "full", "windows"),
    "winhttp_proxy_info": (FIRST_RELEASE, "full", "none", "windows"),
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, t.Any]:
    """``ansible-doc --json`` of every module: ansible-core's own reading, doc fragments and all."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_DIR),
           "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", "module",
                          *(f"crlfix.windows.{name}" for name in MODULES)],
                         env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120)
    return {name.removeprefix("crlfix.windows."): entry["doc"] for name, entry in json.loads(out.stdout).items()}


def test_every_module_is_listed() -> None:
    assert sorted(ATTRIBUTES) == MODULES


@pytest.mark.parametrize("name", MODULES)
def test_the_action_validates_with_the_options_ansible_doc_shows(rendered, name) -> None:
    action = importlib.import_module(f"ansible_collections.crlfix.windows.plugins.action.{name}").ActionModule
    assert action.MODULE == name
    assert action.ARGUMENT_SPEC == module_argument_spec(name)
    assert argument_spec_of_options(rendered[name].get("options")) == action.ARGUMENT_SPEC


@pytest.mark.parametrize("name", MODULES)
def test_attributes(rendered, name) -> None:
    doc = rendered[name]
    attributes = doc["attributes"]
    assert (doc["version_added"], attributes["check_mode"]["support"], attributes["diff_mode"]["support"],
            attributes["platform"]["platforms"]) == ATTRIBUTES[name]
    assert attributes["action"]["support"] == "full" and attributes["async"]["support"] == "none"
    assert attributes["check_mode"]["details"]
