"""Examples are tests: every documented example runs against the lab as it is written.

What is run (``_snippets.py`` finds it): each module's and each filter's ``EXAMPLES`` (one playbook per plugin),
the YAML task blocks of each doc page (one playbook per page, blocks in page order), each YAML play, and each
``bash`` block (its own ``bash -eu``, from a checkout whose ``build/lab`` is the test's lab, with a PATH that does
not hold ``.venv/bin``: a command that needs the venv must say so, as a reader types it; README.md's "As an
installed collection" block runs from a copy of the checkout, in a home of its own, and its report must come from
the installed copy). A playbook runs in check
mode first, then for real when the check predicted a change; the hosts are put back to their seeded state
before and after. Inventory and variable files in the docs cannot run: they are marked, like everything else
that cannot run in the lab, in the doc itself with the reason (``_snippets.py`` says how).

The examples name Contoso's servers; the only changes made to them before they run are these substitutions
(see ``substitutions``), applied as plain text replacements, longest first:

===================================  =================================================================
in the examples                      in the lab
===================================  =================================================================
``proxy.contoso.com:8080`` / ``8443``  the lab's squid (every site's ``fix_crl_proxy``)
``proxy-east/-west.contoso.com:8080``  the lab's squid
``http://pki.contoso.com/crl/...``   the lab CA's CRL on the lab's CRL server (``/issuing-ca.crl``)
``contoso.com`` (``contoso\\.com``)  ``lab.test`` (``lab\\.test``): the lab's host names
``10.0.0.11``                        the address of ``lync-fe01.lab.test``
``lync.pem``                         ``lync-fe01.lab.test``'s certificate (PEM) from the lab's PKI
``-i inventory``                     ``-i <lab>/inventory.yml`` (the lab's inventory, by its absolute path)
``max_handshake_ms: 1000``           ``max_handshake_ms: 20000`` (below)
===================================  =================================================================

A handshake's latency limit is a wall-clock assertion, which no test makes: the lab's twins, squid and the test run
share two cores, and a handshake that takes 300 ms alone takes over a second when the other test worker is busy. So
the task examples run with ``tls_probe``'s limit at 20 s: the written one replaced as above, the default one through
the play's ``module_defaults``. For the same reason ``EXAMPLE_HOST`` keeps Windows' own chain-engine retrieval
timeouts (15 s per URL, 20 s per chain: no ``ChainEngine\\Config`` policy values) instead of the lab's 3 s and 4 s,
which the lab sets so that a host without a working proxy costs seconds (docs/lab.md): its proxy works, so the
defaults cost nothing there, and a CRL download that takes over 3 s under load does not turn into an unknown
revocation status. What the examples still prove is that each runs and that every handshake completes with its
revocation check passing.

Task examples run on ``EXAMPLE_HOST``, a Lync front end whose proxy is already right, so the probes and CRL
checks of the examples can pass; plays run on the hosts they name.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.lab.fleet.process import REPO_ROOT

from . import _snippets
from ._snippets import Snippet, reader_checkout, reader_env, substitute, yaml_shape

pytestmark = pytest.mark.lab

EXAMPLE_HOST = "lync-fe02.lab.test"
# tls_probe's latency limit in the lab's runs of the examples (the module docstring says why).
LAB_MAX_HANDSHAKE_MS = 20000
_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                    r"\s+failed=(?P<failed>\d+)", re.MULTILINE)


def substitutions(lab) -> dict[str, str]:
    """The visible map of the module docstring: what the examples name -> what the lab has."""
    crl = lab.crl_addresses["crl.public-ca.test"]
    return {
        "proxy.contoso.com:8080": lab.proxy,
        "proxy.contoso.com:8443": lab.proxy,
        "proxy-east.contoso.com:8080": lab.proxy,
        "proxy-west.contoso.com:8080": lab.proxy,
        "http://pki.contoso.com/crl/Issuing.crl": f"http://{crl}/issuing-ca.crl",
        "contoso.com": "lab.test",
        r"contoso\.com": r"lab\.test",
        "10.0.0.11": lab.hosts["lync-fe01.lab.test"].address,
        "lync.pem": str(lab.lab_dir / "pki" / "hosts" / "lync-fe01.lab.test.crt"),
        "-i inventory ": f"-i {lab.inventory_path} ",
        "max_handshake_ms: 1000": f"max_handshake_ms: {LAB_MAX_HANDSHAKE_MS}",
    }


def _reset(lab) -> None:
    for name in lab.hosts:
        state = lab.reset_state(name)
        if name == EXAMPLE_HOST and state.get("chain_engine"):
            lab.write_state(name, {**state, "chain_engine": {}})  # Windows' defaults (the module docstring)


def _recap(stdout: str) -> dict[str, dict[str, int]]:
    return {m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in _RECAP.finditer(stdout)}


def _run_playbook(lab, plays: list[dict], workdir: Path, label: str) -> None:
    """Check mode, then (if the check predicts a change) for real; every host reset before and after."""
    book = workdir / "playbooks" / f"{label}.yml"
    book.parent.mkdir(parents=True, exist_ok=True)
    book.write_text(yaml.safe_dump(plays, sort_keys=False))
    try:
        for mode in ("check", "apply"):
            _reset(lab)
            result = lab.run_playbook(book, *(["--check", "--diff"] if mode == "check" else []), check=False)
            recap = _recap(result.stdout)
            assert result.returncode == 0 and recap, (
                f"{label} ({mode}) exited {result.returncode}\n{book.read_text()}\n{result.stdout}\n{result.stderr}")
            assert not any(r["failed"] or r["unreachable"] for r in recap.values()), f"{label} ({mode}): {recap}"
            if mode == "check" and not any(r["changed"] for r in recap.values()):
                break
    finally:
        _reset(lab)


def _tasks_play(lab, snippets: list[Snippet]) -> list[dict]:
    tasks: list[dict] = []
    for snippet in snippets:
        tasks += yaml.safe_load(substitute(snippet.text, substitutions(lab)))
    return [{"name": f"Examples of {snippets[0].page}", "hosts": EXAMPLE_HOST, "gather_facts": False,
             "module_defaults": {"crlfix.windows.tls_probe": {"max_handshake_ms": LAB_MAX_HANDSHAKE_MS}},
             "tasks": tasks}]


# -- plugins' EXAMPLES: one playbook per module or filter -------------------------------------------------------


@pytest.mark.parametrize("path", _snippets.modules() + _snippets.filters(), ids=lambda p: p.name)
def test_plugin_examples_run(lab, tmp_path, path):
    snippet = _snippets.module_examples(path) if path.suffix == ".py" else _snippets.filter_examples(path)
    assert yaml_shape(snippet) == "tasks", f"{snippet.where}: EXAMPLES must be a task list"
    _run_playbook(lab, _tasks_play(lab, [snippet]), tmp_path, path.stem)


# -- doc pages: the YAML blocks ---------------------------------------------------------------------------------


def _page_snippets() -> dict[str, list[Snippet]]:
    return {page.relative_to(REPO_ROOT).as_posix(): _snippets.markdown_snippets(page) for page in _snippets.doc_pages()}


def _yaml_pages() -> list[str]:
    return sorted(page for page, snippets in _page_snippets().items()
                  if any(s.kind == "yaml" and s.skip is None for s in snippets))


@pytest.mark.parametrize("page", _yaml_pages())
def test_doc_yaml_runs(lab, tmp_path, page):
    runnable = [s for s in _page_snippets()[page] if s.kind == "yaml" and s.skip is None]
    cannot = [s.where for s in runnable if yaml_shape(s) == "data"]
    assert not cannot, f"not a playbook or a task list, and not marked as not run in the lab: {cannot}"
    tasks = [s for s in runnable if yaml_shape(s) == "tasks"]
    if tasks:
        _run_playbook(lab, _tasks_play(lab, tasks), tmp_path, "tasks")
    for number, snippet in enumerate(s for s in runnable if yaml_shape(s) == "play"):
        _run_playbook(lab, yaml.safe_load(substitute(snippet.text, substitutions(lab))), tmp_path, f"play{number}")


# -- doc pages: the shell blocks --------------------------------------------------------------------------------


def _is_install_block(snippet: Snippet) -> bool:
    """README.md's "As an installed collection": it builds and installs a tarball, so it runs from a copy."""
    return snippet.page == "README.md" and "ansible-galaxy collection install" in snippet.text


def _shell_blocks() -> list[Snippet]:
    return [s for snippets in _page_snippets().values() for s in snippets
            if s.kind == "shell" and s.skip is None and not _is_install_block(s)]


@pytest.mark.parametrize("snippet", _shell_blocks(), ids=lambda s: s.where)
def test_doc_shell_runs(lab, tmp_path, snippet):
    clone = reader_checkout(tmp_path, lab.lab_dir)
    script = substitute(snippet.text, substitutions(lab))
    env = reader_env(HOME=str(tmp_path))
    _reset(lab)
    try:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=clone, env=env, capture_output=True,
                                text=True, timeout=600, check=False)
    finally:
        _reset(lab)
    assert result.returncode == 0, (
        f"{snippet.where} exited {result.returncode}\n{script}\n{result.stdout}\n{result.stderr}")


def test_readme_install_block_runs_the_installed_collection(lab, tmp_path):
    """The block as typed, from a checkout with real files (ansible-galaxy skips linked folders) and its .venv; then
    the check run's report says the playbook came from an installed copy of the tarball, in the reader's home."""
    (snippet,) = [s for snippets in _page_snippets().values() for s in snippets if _is_install_block(s)]
    assert snippet.skip is None, f"{snippet.where} must run: {snippet.skip}"
    clone, home = tmp_path / "checkout", tmp_path / "home"
    shutil.copytree(REPO_ROOT, clone, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".collections", "build", "reports", "inventory", "__pycache__", "*.tar.gz"))
    (clone / ".venv").symlink_to(REPO_ROOT / ".venv")
    home.mkdir()
    script = substitute(snippet.text, substitutions(lab))
    _reset(lab)
    try:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=clone, env=reader_env(HOME=str(home)),
                                capture_output=True, text=True, timeout=900, check=False)
    finally:
        _reset(lab)
    assert result.returncode == 0, (
        f"{snippet.where} exited {result.returncode}\n{script}\n{result.stdout}\n{result.stderr}")
    (report_path,) = home.rglob("reports/fix-crl-*.json")
    report = json.loads(report_path.read_text())
    playbook = Path(report["run"]["playbook"])
    installed = playbook.parents[1]
    assert playbook.is_relative_to(home) and installed.parts[-3:] == ("ansible_collections", "crlfix", "windows")
    assert (installed / "MANIFEST.json").is_file() and not installed.is_symlink()
    lync = {name for name, host in lab.hosts.items() if host.group == "lync_servers"}
    assert lync and {host["host"] for host in report["hosts"]} == lync
    assert report["run"]["check_mode"] is True and report["totals"]["changed"] == 0
