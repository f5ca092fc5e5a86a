"""The lab allocator (tests/lab/fleet/addresses.py): disjoint ranges, places, the free check, the CLI's choice."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from tests.lab.fleet import LabError, addresses, launcher
from tests.lab.fleet.addresses import RANGES, AddressInUse, Place


def test_ranges_never_overlap_and_keep_off_squid_and_the_documented_crl_server():
    for (name, one), (other, two) in itertools.combinations(RANGES.items(), 2):
        assert not set(one) & set(two), (name, other)
    taken = set().union(*map(set, RANGES.values()))
    assert 0 not in taken and 9 not in taken  # 127.0.0.x: squid; 127.0.9.x: the documented CRL server
    assert max(taken) <= 254 and addresses.SQUID_PORT_BASE + max(taken) < 32768  # below the ephemeral ports


def test_a_place_puts_twins_squid_and_crl_server_on_one_number():
    place = Place.at(171)
    assert [place.host_address(i) for i in (0, 1, 253, 254, 507)] == [
        "127.0.171.1",
        "127.0.171.2",
        "127.0.171.254",
        "127.0.172.1",
        "127.0.172.254",
    ]
    assert place.squid_port == 31171
    assert place.crl_addresses == ("127.9.171.80", "127.9.171.81", "127.9.171.82")
    assert set(place.listeners(2)) == {
        ("127.0.0.1", 31171),
        ("127.0.0.2", 31171),  # squid's agent-filtering listeners (tests/lab/squid.py AGENT_FILTERS)
        ("127.0.0.3", 31171),
        ("127.0.0.4", 31171),  # the proxy that asks for authentication, the one that blocks the CTL host
        ("127.0.0.5", 31171),
        ("127.0.0.6", 31171),  # the second squid, whose resolver knows no name
        *((f"127.9.171.{last}", 80) for last in (80, 81, 82)),
        *((f"127.0.171.{host}", port) for host in (1, 2) for port in (5985, 5986, 5061)),
    }


def test_the_documented_place_is_the_one_docs_lab_md_names():
    place = Place.documented()
    assert (place.host_address(0), place.squid_port, place.crl_addresses) == (
        "127.0.1.1",
        3128,
        ("127.0.9.80", "127.0.9.81", "127.0.9.82"),
    )


def test_addresses_past_the_last_subnet_and_bad_crl_nets_are_named():
    with pytest.raises(ValueError, match="runs past 127.0.255.254"):
        Place.at(254).host_address(2 * 254)
    with pytest.raises(ValueError, match="crl_net: expected 1-254, got 300"):
        list(Place(254, 31254, 300).listeners(0))


def test_a_lab_holds_thousands_of_twins_and_the_documented_one_stops_below_its_crl_server():
    assert Place.at(10).host_address(1999) == "127.0.17.222"  # 2,000 twins: eight /24s
    assert addresses.max_hosts("bench") == 50 * 254 and addresses.max_hosts("documented") == 8 * 254
    assert Place.documented().host_address(8 * 254 - 1) == "127.0.8.254"
    with pytest.raises(ValueError, match=r"holds at most 2032 twins \(127.0.9.x is its CRL server\)"):
        Place.documented().host_address(8 * 254)


def test_subnets_for_counts_the_twins_slash_24s():
    assert [addresses.subnets_for(n) for n in (0, 1, 254, 255, 500)] == [1, 1, 1, 2, 2]


def test_check_free_names_the_first_address_another_process_listens_on():
    place = addresses.allocate("pytest", 1)
    with socket.socket() as holder:
        holder.bind((place.host_address(0), 5986))
        holder.listen()
        with pytest.raises(AddressInUse, match=rf"^{place.host_address(0)}:5986 is already in use") as info:
            addresses.check_free(place, 1)
    assert (info.value.address, info.value.port) == (place.host_address(0), 5986)
    addresses.check_free(place, 1)  # free again once the holder is gone


def test_places_pass_over_a_taken_place_and_stay_in_their_range():
    seed = 7
    first = next(addresses.places("molecule", 4, seed=seed))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", first.squid_port))
        holder.listen()
        assert addresses.allocate("molecule", 4, seed=seed) != first
    big = addresses.allocate("bench", 500, seed=seed)
    assert {big.subnet, big.subnet + 1} <= set(RANGES["bench"])


def test_an_unknown_kind_is_named():
    with pytest.raises(ValueError, match="kind: expected one of .*'pytest'.*, got 'nightly'"):
        addresses.allocate("nightly", 1)


def test_a_full_range_is_an_error_naming_it(monkeypatch):
    monkeypatch.setitem(RANGES, "pytest", range(170, 171))
    with pytest.raises(LabError, match=r"no free place for 600 twins between 127.0.170.x and 127.0.170.x"):
        addresses.allocate("pytest", 600)  # three /24s do not fit in a range of one


def test_scripts_lab_py_places_build_lab_at_the_documented_place_and_others_nowhere_yet(tmp_path: Path):
    assert launcher.place_for(launcher.DEFAULT_LAB_DIR) == Place.documented()
    assert launcher.place_for(launcher.DEFAULT_LAB_DIR, subnet=3, crl_net=40) == Place(3, 3128, 40)
    assert launcher.place_for(tmp_path) is None  # a second lab: up_anywhere takes a free place of "lab"
    assert launcher.place_for(tmp_path, subnet=42) == Place.at(42)
    assert launcher.place_for(tmp_path, subnet=42, squid_port=4000) == Place(42, 4000, 42)
