"""Lab plumbing for the molecule scenario (run by its playbooks with the controller's Python).

    lab_helper.py slot                 JSON {subnet, squid_port, crl_net}: a place on loopback no other lab uses
    lab_helper.py views LAB_DIR        JSON {host: {view: {proxy, bypass}}} decoded from the twins' state files

A molecule lab sits beside a `make lab-up` lab, benchmarks and pytest's labs: its place comes from the lab
allocator's "molecule" range (tests/lab/fleet/addresses.py), which no other kind of lab draws from. The views
are decoded with the twin's own WinHttpSettings decoder (tests/twin/winhttp_value.py), independent of the
collection's parser.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.lab.fleet import addresses  # noqa: E402 - needs the repo root on sys.path
from tests.twin import winhttp_value  # noqa: E402

HOSTS = 4  # create.yml's lab


def slot() -> dict[str, int | None]:
    place = addresses.allocate("molecule", HOSTS)
    return {"subnet": place.subnet, "squid_port": place.squid_port, "crl_net": place.crl_net}


def views(lab_dir: Path) -> dict[str, dict[str, dict[str, str] | None]]:
    result = {}
    for path in sorted((lab_dir / "hosts").glob("*.json")):
        registry = json.loads(path.read_text())["registry"]
        decoded = {}
        for view in ("native", "wow6432"):
            raw = registry[view]["WinHttpSettings"]
            settings = None if raw is None else winhttp_value.decode(base64.b64decode(raw))
            decoded[view] = (
                {"proxy": "", "bypass": ""} if settings is None or settings.is_direct
                else {"proxy": settings.proxy, "bypass": settings.bypass}
            )
        result[path.stem] = decoded
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["slot"]:
        print(json.dumps(slot()))
    elif argv[:1] == ["views"] and len(argv) == 2:
        print(json.dumps(views(Path(argv[1]))))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
