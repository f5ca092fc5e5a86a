"""Building and running a lab: a fleet of twins (``tests/twin``) in one server process, with its revocation world.

``addresses``   where a lab lives on loopback: disjoint ranges, the one allocator
``plan``        the seeded fleet: names, groups, sites, starting states, OS builds
``listener_certs``  the WinRM listener CA and each twin's HTTPS certificate
``build``       writes a lab directory: host states, ``fleet.json``, ``inventory.yml``
``server``      the lab server process (every twin + the control channel + test-only fault hooks)
``process``     start/stop that process by PID; the control-channel client
``world``       start/stop the revocation world: CRLs, CRL server, squid
``launcher``    ``up``/``down`` as ``scripts/lab.py`` and pytest use them: checks, start, clean-up on failure
``handle``      ``LabHandle``, what a test gets from the ``lab`` fixture

See ``tests/lab/README.md`` ("Running a lab").
"""

from __future__ import annotations


class LabError(RuntimeError):
    """A lab could not be built, started, stopped or reached; the message says what and where."""
