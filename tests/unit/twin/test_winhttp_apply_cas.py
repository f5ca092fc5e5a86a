"""``winhttp_apply`` schema 2 (compare and swap) in the twin, directly and under the real controller code.

The twin's command layer runs without the network: the first tests send host scripts the way
test_executor.py does; the last ones hand ``manage_winhttp_proxy`` a connection whose ``exec_command``
is the twin's executor, so the seam, the stdin fallback and the twin's CAS run together. Every assertion on
what was (not) written reads the state file on disk, not a document.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest
from ansible.plugins.loader import shell_loader

from ansible_collections.crlfix.windows.plugins.plugin_utils._host._errors import ExpectedFailure
from ansible_collections.crlfix.windows.plugins.plugin_utils._host._powershell import inflate_document
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_proxy import manage_winhttp_proxy
from ansible_collections.crlfix.windows.plugins.plugin_utils._winhttp_state import state_from_raw
from tests.twin import executor
from tests.twin.state import HostState, new_state, write_json_atomic

# The direct-access value of Microsoft Learn, "Use Group Policy to apply WinHTTP proxy settings to Windows
# clients", counter 0.
DIRECT = bytes.fromhex("1800000000000000010000000000000000000000")
# What `netsh winhttp set proxy lab-proxy.lab.test:3128` writes over it (same layout, counter 1, flags 3).
PROXY = struct.pack("<IIII", 0x18, 1, 3, 23) + b"lab-proxy.lab.test:3128" + struct.pack("<I", 0)
WANT = {"state": "present", "proxy": "proxy.crlfix-test.lab.test:8080", "bypass": ["<local>"],
        "views": ["native", "wow6432"]}


def document(outcome: executor.Outcome) -> dict:
    """The document an outcome printed, inflated as the controller's seam does (a long one is printed deflated)."""
    return json.loads(inflate_document(outcome.stdout))


def b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


@pytest.fixture
def state(tmp_path: Path) -> HostState:
    path = tmp_path / "host.json"
    write_json_atomic(path, new_state("fe01.lab.test", os_build=17763, user="u", password="p", native=DIRECT))
    return HostState.load(path)


def on_disk(state: HostState) -> dict[str, bytes | None]:
    registry = json.loads(state.path.read_text())["registry"]
    return {view: None if registry[view]["WinHttpSettings"] is None
            else base64.b64decode(registry[view]["WinHttpSettings"]) for view in ("native", "wow6432")}


def apply(state: HostState, operations: list[dict], schema: int = 2) -> executor.Outcome:
    args = json.dumps({"operations": operations}).replace("'", "''")
    script = (f"# crlfix-script: winhttp_apply\n# crlfix-schema: {schema}\n"
              f"$CrlfixArgs = ConvertFrom-Json -InputObject '{args}'\n")
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    return executor.run(state, executor.parse("PowerShell", ["-NoProfile", "-EncodedCommand", encoded]), b"")


def test_matching_expectations_write(state) -> None:
    out = apply(state, [{"view": "native", "action": "reset", "expect_b64": b64(DIRECT)},
                        {"view": "wow6432", "action": "restore", "value_b64": b64(DIRECT), "expect_b64": None}])
    doc = document(out)
    assert (out.rc, doc["schema"], doc["conflicts"]) == (0, 2, [])
    assert [r["rc"] for r in doc["results"]] == [0, 0]
    assert on_disk(state)["native"] != DIRECT and on_disk(state)["wow6432"] == DIRECT


def test_one_mismatch_writes_nothing_in_any_view(state) -> None:
    before = on_disk(state)
    # The native expectation holds; the wow6432 one does not (the view has no value): neither is written.
    out = apply(state, [{"view": "native", "action": "set", "proxy": "p:1", "bypass": "", "expect_b64": b64(DIRECT)},
                        {"view": "wow6432", "action": "set", "proxy": "p:1", "bypass": "", "expect_b64": b64(PROXY)}])
    doc = document(out)
    assert out.rc == 0 and doc["results"] == []
    assert doc["conflicts"] == [{"view": "wow6432", "expected_b64": b64(PROXY), "found_b64": None}]
    assert on_disk(state) == before
    assert doc["views"]["native"]["value_b64"] == b64(DIRECT)


def test_schema_1_still_writes_without_expectations(state) -> None:
    out = apply(state, [{"view": "wow6432", "action": "restore", "value_b64": b64(PROXY)}], schema=1)
    doc = document(out)
    assert doc["schema"] == 1 and "conflicts" not in doc
    assert on_disk(state)["wow6432"] == PROXY


def test_expect_b64_of_the_wrong_type_is_named(state) -> None:
    out = apply(state, [{"view": "native", "action": "reset", "expect_b64": 5}])
    assert out.rc == 1 and b"operations[0].expect_b64: expected a string or null, got 5" in out.stderr


class TwinConnection:
    """A connection whose remote commands run in the twin's executor; counts them."""

    def __init__(self, state: HostState) -> None:
        self._shell = shell_loader.get("powershell")
        self.state = state
        self.commands = 0

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        self.commands += 1
        out = executor.run(self.state, executor.parse(cmd, []), in_data or b"")
        stderr = out.stderr if isinstance(out.stderr, bytes) else out.stderr.encode()
        return out.rc, out.stdout.encode(), stderr


def manage(connection: TwinConnection, *, check_mode: bool = False, current: dict | None = None) -> dict:
    return manage_winhttp_proxy(connection, WANT, check_mode=check_mode, diff=False, task_action="t",
                                current=None if current is None else state_from_raw(current))


def test_controller_with_current_check_then_apply_then_idempotent(state) -> None:
    connection = TwinConnection(state)
    read = on_disk(state)
    checked = manage(connection, check_mode=True, current=read)
    assert connection.commands == 0 and checked["changed"] is True
    applied = manage(connection, current=read)
    assert connection.commands == 1 and applied["changed"] is True
    written = on_disk(state)
    assert applied["after"]["native"]["raw_b64"] == b64(written["native"])
    netsh_wrote = struct.pack("<II", 3, 31) + b"proxy.crlfix-test.lab.test:8080" + struct.pack("<I", 7) + b"<local>"
    assert written["native"][8:] == netsh_wrote == written["wow6432"][8:]
    again = manage(connection, current=written)
    assert connection.commands == 1 and again["changed"] is False


def test_controller_with_stale_current_fails_and_the_twin_writes_nothing(state) -> None:
    connection = TwinConnection(state)
    stale = on_disk(state)
    state.set_winhttp_value("native", PROXY)  # another tool writes between the read and the apply
    before = on_disk(state)
    with pytest.raises(ExpectedFailure) as info:
        manage(connection, current=stale)
    assert str(info.value) == (f"WinHttpSettings in view native changed since it was read (expected {b64(DIRECT)}, "
                               f"found {b64(PROXY)}); nothing was written")
    assert connection.commands == 1
    assert on_disk(state) == before
    assert info.value.fields["changed"] is False
