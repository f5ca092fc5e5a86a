"""Every folder scripts/record_host.py recorded, replayed through the controller's parsers.

A folder from a real Windows host needs no new code here: drop it under tests/unit/plugins/fixtures/recorded/ with a
line in SOURCES.md. A test that fails on it is a finding about Windows (docs/dev/real-windows.md says what to do).
"""

from __future__ import annotations

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._script import SCRIPT_SCHEMA
from tests.unit.plugins.fixtures.recorded.replay import (
    RECORDED,
    load,
    recorded_folders,
    replay_folder,
    views_from_state,
)

FOLDERS = recorded_folders()
# Scripts every recording has; tls_probe needs --peer, winhttp_apply --apply-conflict.
ALWAYS = {"winhttp_state", "cert_inventory", "crl_fetch", "host_audit"}


def test_there_is_a_recorded_folder_and_each_names_its_source() -> None:
    assert FOLDERS, f"no recorded folder under {RECORDED}"
    sources = (RECORDED / "SOURCES.md").read_text()
    for folder in FOLDERS:
        assert f"`{folder.name}`" in sources, f"{folder.name} is not described in SOURCES.md"


@pytest.mark.parametrize("path", FOLDERS, ids=lambda p: p.name)
def test_every_script_answer_is_a_document_the_controller_accepts(path, monkeypatch) -> None:
    folder = load(path)
    recorded = {r.script for r in folder.recordings if r.kind == "script"}
    assert ALWAYS <= recorded <= set(SCRIPT_SCHEMA)
    result = replay_folder(folder, monkeypatch)
    # Each helper asked for exactly the scripts the recorder sent, once each (host_audit needed no second command).
    assert sorted(result["sent"]) == sorted(recorded - {"winhttp_apply"})
    assert result["host_audit"].commands == 1


@pytest.mark.parametrize("path", FOLDERS, ids=lambda p: p.name)
def test_the_controller_reads_every_part_of_the_host(path, monkeypatch) -> None:
    folder = load(path)
    result = replay_folder(folder, monkeypatch)
    state = result["winhttp_state"]
    assert state["views"]["native"] is not None and state["os_build"] > 0
    inventory = result["cert_inventory"]
    assert inventory["store_counts"] and inventory["unparsable_certificates"] == []
    crl = result["crl_fetch"]
    assert [r["url"] for r in crl["results"]] == [e["url"] for e in folder.script("crl_fetch").options["endpoints"]]
    audit = result["host_audit"]
    for part in ("winhttp", "certificates", "crl"):
        assert not isinstance(getattr(audit, part), ExpectedFailure), f"{part}: {getattr(audit, part)}"
    if "tls_probe" in result:
        peers = folder.script("tls_probe").options["peers"]
        assert len(result["tls_probe"]["results"]) == len(peers)


@pytest.mark.parametrize("path", FOLDERS, ids=lambda p: p.name)
def test_a_refused_apply_wrote_nothing(path, monkeypatch) -> None:
    folder = load(path)
    if folder.script("winhttp_apply") is None:
        pytest.skip("recorded without --apply-conflict")
    result = replay_folder(folder, monkeypatch)
    document = result["documents"]["winhttp_apply"]
    assert document["results"] == [] and len(document["conflicts"]) == 1
    assert views_from_state(document) == views_from_state(result["documents"]["winhttp_state"])


@pytest.mark.parametrize("path", FOLDERS, ids=lambda p: p.name)
def test_netsh_and_the_registry_tell_the_same_story_per_view(path, monkeypatch) -> None:
    # netsh of a view shows what that view's registry value holds, and winhttp_state read the same bytes.
    folder = load(path)
    result = replay_folder(folder, monkeypatch)
    state_views = views_from_state(result["documents"]["winhttp_state"])
    native = result["native"]
    for view in ("native", "wow6432"):
        if f"netsh_{view}" not in native:
            continue
        settings = native[f"reg_{view}"]
        assert (settings.to_dict()["proxy"] if settings else "") == native[f"netsh_{view}"].proxy
        expected = state_views.get(view)
        assert (settings is None) == (expected is None)
