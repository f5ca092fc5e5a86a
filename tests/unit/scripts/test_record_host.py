"""scripts/record_host.py and its action: the masking and the command line (the end-to-end run is
tests/integration/scripts/test_record_host.py)."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


action = _load("crlfix_record_host_under_test", REPO_ROOT / "scripts" / "record_host_action" / "crlfix_record_host.py")
cli = _load("record_host_under_test", REPO_ROOT / "scripts" / "record_host.py")

DER = b"0\x82\x01\x00 pretend certificate naming SRV01.contoso.com"
DER_B64 = base64.b64encode(DER).decode("ascii")
THUMBPRINT = hashlib.sha1(DER).hexdigest().upper()  # noqa: S324 - what Windows shows


def _entries() -> list[dict]:
    inventory = {"script": "cert_inventory", "schema": 1, "computer_name": "SRV01",
                 "stores": {"My": [{"der_b64": DER_B64, "has_private_key": True}]}, "missing_stores": [],
                 "winhttp": None}
    return [
        {"id": "01-cert_inventory", "kind": "script", "script": "cert_inventory", "rc": 0,
         "stdout": "WARNING: SRV01 is busy\r\n" + json.dumps(inventory) + "\r\n", "stderr": ""},
        {"id": "02-certutil_urlcache", "kind": "command", "rc": 0,
         "stdout": f"cert {THUMBPRINT} of srv01.contoso.com; SRV010 and XSRV01 are other hosts\r\n",
         "stderr": "SRV01: done"},
    ]


def test_masking_replaces_names_and_thumbprints_where_they_stand_alone() -> None:
    entries = _entries()
    action._mask(entries, ["SRV01", "srv01.contoso.com", ""])
    document = json.loads(entries[0]["stdout"].split("\r\n")[1])
    assert document["computer_name"] == "masked-host"
    assert entries[0]["stdout"].startswith("WARNING: masked-host is busy")
    assert document["stores"]["My"][0]["der_b64"] == DER_B64  # DER is never edited
    text = entries[1]["stdout"]
    assert "masked-thumbprint-" in text and THUMBPRINT not in text
    assert "masked-host.example.invalid" in text and "SRV010 and XSRV01" in text
    assert entries[1]["stderr"] == "masked-host: done"


def test_without_the_names_nothing_changes() -> None:
    entries = _entries()
    before = [dict(entry) for entry in entries]
    action._mask(entries, [])
    assert entries[1]["stdout"].replace("masked-thumbprint-01", THUMBPRINT) == before[1]["stdout"]
    assert json.loads(entries[0]["stdout"].split("\r\n")[1]) == json.loads(before[0]["stdout"].split("\r\n")[1])


def test_the_impossible_expectation_is_no_winhttpsettings_value() -> None:
    raw = base64.b64decode(action.IMPOSSIBLE_EXPECTATION)
    assert raw[:4] not in (b"\x18\x00\x00\x00", b"\x28\x00\x00\x00")  # version DWORDs Windows writes
    assert b"crlfix" in raw


def test_every_read_the_twin_models_comes_first() -> None:
    modelled = [twin for _label, _command, twin in action.NATIVE_READS]
    assert modelled == sorted(modelled, reverse=True) and any(modelled) and not all(modelled)


@pytest.mark.parametrize("argv", [[], ["host"], ["-i", "inventory.yml"]])
def test_the_command_line_needs_an_inventory_and_a_host(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parse_args(argv)


def test_the_default_folder_is_where_the_replay_looks() -> None:
    args = cli.parse_args(["-i", "inventory.yml", "srv01"])
    assert args.out == REPO_ROOT / "tests" / "unit" / "plugins" / "fixtures" / "recorded"
    assert not args.mask and not args.apply_conflict and args.peer == []


def test_the_recorder_sends_again_what_the_committed_twin_folder_answers(monkeypatch, tmp_path) -> None:
    # The recorder's plan against the controller's current API: the same commands, the same arguments, in order.
    from tests.unit.plugins.fixtures.recorded.replay import RECORDED, load

    folder = load(RECORDED / "twin-lync-fe01")
    scripts = {r.script: r for r in folder.recordings if r.kind == "script"}
    commands = {r.command: r for r in folder.recordings if r.kind == "command"}

    def seam(connection, text, *, task_action):
        first = text.splitlines()[0]
        recorded = scripts[first.removeprefix("# crlfix-script: ")] if first.startswith("# crlfix-script:") \
            else commands[text]
        return recorded.rc, recorded.stdout, recorded.stderr

    monkeypatch.setattr(action, "run_powershell", seam)
    recorder = action.Recorder(None, tmp_path)
    action._record(recorder, folder.manifest["options"], folder.recorded_at)
    assert [entry["id"] for entry in recorder.entries] == [r.id for r in folder.recordings]
    for entry in recorder.entries:
        if entry["kind"] == "script":
            recorded = scripts[entry["script"]]
            assert (entry["args"], entry["options"]) == (recorded.args, recorded.options), entry["id"]
