"""ansible.windows.win_http_proxy's integration suite replayed against crlfix.windows.winhttp_proxy on a twin.

The target ``tests/integration/targets/winhttp_proxy_parity`` runs the 13 steps of ansible.windows'
``tests/integration/targets/win_http_proxy/tasks/tests.yml`` with the same arguments and the same read-back
(``netsh winhttp show proxy``); each step records whether it held. Here the table is printed (``pytest -s``) and
13 of 13 are required; the host's registry must be back byte for byte and the IE proxy the replay gave the
connecting user is removed again.
"""

from __future__ import annotations

import pytest

from tests.integration.plugins.test_core_modules import hosts_by_scenario, registry_bytes, run_target

pytestmark = pytest.mark.lab


def test_win_http_proxy_suite_holds_13_of_13_steps(lab, tmp_path):
    name = hosts_by_scenario(lab)["bypass"]
    state = lab.reset_state(name)
    state["ie_proxy"] = None  # the replay's step 13 gives the user an IE proxy itself, as the suite does
    lab.write_state(name, state)
    before = registry_bytes(state["registry"])
    try:
        docs = run_target(lab, tmp_path, "winhttp_proxy_parity", [name])
        steps = docs[name]["steps"]
        print("\n| step | win_http_proxy suite | holds |\n| --- | --- | --- |")
        for step in steps:
            print(f"| {step['number']} | {step['title']} | {'yes' if step['held'] else 'NO'} |")
        assert [step["number"] for step in steps] == list(range(1, 14))
        assert [step["number"] for step in steps if not step["held"]] == []
        after = lab.state(name)
        assert registry_bytes(after["registry"]) == before
        assert after["ie_proxy"] == {"proxy": "proxyhost:8080", "bypass": "abc;def;<local>"}
    finally:
        lab.reset_state(name)
