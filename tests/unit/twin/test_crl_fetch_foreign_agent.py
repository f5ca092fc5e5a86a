"""The twin's ``crl_fetch`` foreign-agent request at the time box, against the script's contract and the controller.

docs/dev/host-scripts.md, "The foreign agent": an answer in hand is kept when only the second request is open at the
box; that request gets the box's text and no agent (the job never handed it over). The controller reads the result.
"""

from __future__ import annotations

import time

import pytest

from ansible_collections.crlfix.windows.plugins.plugin_utils._crl_retrieval import foreign_agent_result
from ansible_collections.crlfix.windows.plugins.plugin_utils._fix_crl._audit import time_box_error
from tests.twin.scripts import crl_fetch
from tests.twin.scripts.host_audit import TimeBox

URL = "http://crl.public-ca.test/issuing-ca.crl"
ANSWER = {"url": URL, "status": 200, "elapsed_ms": 12, "bytes": 3, "body_b64": "YWJj", "truncated": False,
          "truncated_by": None, "error": None, "foreign_agent": None}


def test_a_box_that_ends_during_the_foreign_request_keeps_the_answer() -> None:
    box = TimeBox(1)
    result = crl_fetch._open_at_box(URL, time.monotonic(), 5.0, box, {URL: dict(ANSWER)})
    assert {k: v for k, v in result.items() if k != "foreign_agent"} == {k: v for k, v in ANSWER.items()
                                                                         if k != "foreign_agent"}
    assert result["foreign_agent"] == {"agent": None, "status": None, "error": time_box_error(1)}
    assert box.hit is True
    assert foreign_agent_result(result, "results[0]") == {"agent": None, "http_status": None,
                                                          "error": time_box_error(1)}


def test_a_box_that_ends_before_any_answer_leaves_the_url_unanswered() -> None:
    for answered in (None, {}):
        result = crl_fetch._open_at_box(URL, time.monotonic(), 5.0, TimeBox(1), answered)
        assert (result["status"], result["error"], result["foreign_agent"]) == (None, time_box_error(1), None)


def test_the_argument_is_a_boolean_defaulting_to_false() -> None:
    assert crl_fetch.foreign_agent_asked({}) is False
    assert crl_fetch.foreign_agent_asked({"foreign_agent": True}) is True
    with pytest.raises(crl_fetch.ScriptError, match="argument 'foreign_agent'"):
        crl_fetch.foreign_agent_asked({"foreign_agent": "yes"})
