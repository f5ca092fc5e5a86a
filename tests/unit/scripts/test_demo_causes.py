"""scripts/demo_causes.py: how a host's record is held against the causes it was seeded with."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("demo_causes", REPO_ROOT / "scripts" / "demo_causes.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


def record(diagnosis: tuple[str, ...] = (), risks: tuple[str, ...] = ()) -> dict:
    return {"diagnosis": [{"cause": c, "owner": "server"} for c in diagnosis],
            "risks": [{"cause": c, "owner": "pki"} for c in risks]}


def test_a_seed_is_matched_by_the_diagnosis_primary_first() -> None:
    assert demo.judge(("crl_expired_at_source",), record(("crl_expired_at_source", "clock_skew"))) is None
    assert demo.judge(("crl_expired_at_source",), record(("clock_skew",))) == "not in its diagnosis: " \
        "crl_expired_at_source"
    assert demo.judge(("clock_skew",), record(("no_proxy", "clock_skew"))) == \
        "primary cause no_proxy, not the seeded clock_skew"


def test_identity_path_brings_no_proxy_as_its_primary_cause() -> None:
    assert demo.judge(("identity_path",), record(("no_proxy", "identity_path"))) is None
    assert demo.judge(("identity_path",), record(("no_proxy",))) == "not in its diagnosis: identity_path"


def test_causes_that_fail_nothing_are_a_passing_hosts_risks() -> None:
    assert demo.judge(("ocsp_responder_failing",), record(risks=("ocsp_responder_failing",))) is None
    assert demo.judge(("ocsp_responder_failing",), record(("ocsp_responder_failing",))).startswith(
        "a host whose causes fail nothing has a diagnosis")
    assert demo.judge(("slow_chain_timeouts",), record()) == "not in its risks: slow_chain_timeouts"
    # Beside a cause that fails the host, a latent one is part of its diagnosis.
    assert demo.judge(("no_proxy", "non_self_signed_root"), record(("no_proxy", "non_self_signed_root"))) is None


def test_a_healthy_host_has_no_diagnosis() -> None:
    assert demo.judge(("correct",), record(risks=("clock_skew",))) is None
    assert demo.judge(("correct",), record(("no_proxy",))) == "a healthy host has a diagnosis: no_proxy"
