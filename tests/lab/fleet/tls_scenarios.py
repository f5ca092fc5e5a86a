"""Host scenarios of the TLS axis: applied to a host's state, beside the WinHTTP starting states of plan.py.

``tls10_peer``: a Lync Server 2010 front end, which runs on Windows Server 2008 R2 and speaks TLS 1.0 only
(Microsoft Learn, "Protocols in TLS/SSL (Schannel SSP)"): the 2008 R2 host class (tests/twin/host_classes.py:
Schannel enables TLS 1.0 only), with WMF 5.1 and .NET Framework 4.5.2 installed (WMF 5.1 needs 4.5.2; Release 379893,
Microsoft Learn) so that the collection can manage it too. Its twin's 5061 listener speaks TLS 1.0 only once the twin
(re)starts (``LabHandle.stop_twin`` / ``start_twin`` after ``write_state``).
"""

from __future__ import annotations

import copy
from typing import Any

from tests.twin.host_classes import HOST_CLASSES

TLS10_PEER = "tls10_peer"
WMF51_DOTNET_RELEASE = 379893  # .NET Framework 4.5.2, the least WMF 5.1 installs on


def seed_tls10_peer(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` as a Lync 2010 front end on 2008 R2 SP1 with WMF 5.1 (``lab.scenario`` tls10_peer)."""
    seeded = copy.deepcopy(state)
    win2008r2 = HOST_CLASSES[7601]
    seeded["os"] = {**seeded["os"], "build": win2008r2.build, "caption": win2008r2.caption,
                    "overrides": {"powershell": "5.1", "dotnet_release": WMF51_DOTNET_RELEASE}}
    seeded.setdefault("lab", {})["scenario"] = TLS10_PEER
    return seeded


__all__ = ["TLS10_PEER", "seed_tls10_peer"]
