"""tests/pslint: every rule fails on a sample written to break it, passes its good twin, and the CLI exits 1 on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pslint import RULES, check_file, check_source, defaulted_reads, parse
from tests.pslint.__main__ import collection_ps1_files, main

# name -> (PowerShell text, the rule it must break). Each is the smallest text that uses the construct.
BAD = {
    "null_coalescing": ("$value = $maybe ?? 'default'\n", "PS03"),
    "null_coalescing_assignment": ("$value ??= 'default'\n", "PS03"),
    "null_conditional_member": ("$length = $maybe?.Length\n", "PS03"),
    "null_conditional_index": ("$first = ${maybe}?[0]\n", "PS03"),
    "ternary": ("$word = $flag ? 'yes' : 'no'\n", "PS03"),
    "and_chain": ("Get-Item -Path 'C:\\' && Write-Output -InputObject 'found'\n", "PS03"),
    "or_chain": ("Get-Item -Path 'C:\\' || Write-Output -InputObject 'missing'\n", "PS03"),
    "foreach_parallel": ("$items | ForEach-Object -Parallel { $_ }\n", "PS03"),
    "foreach_parallel_abbreviated": ("$items | ForEach-Object -Par { $_ }\n", "PS03"),
    "clean_block": ("function Get-Thing {\n    begin { }\n    process { }\n    clean { $cache = $null }\n}\n", "PS03"),
    "alias_where": ("$items | ? { $_ }\n", "PS04"),
    "alias_foreach": ("$items | % { $_ }\n", "PS04"),
    "alias_word": ("$items | select -First 1\n", "PS04"),
    "non_ascii": ("# caf\u00e9\n$value = 1\n", "PS01"),
    "here_string": ("$value = @'\nline\n'@\n", "PS05"),
    "syntax_error": ("$value = @{ key = 1\n", "PS02"),
    "positional_argument": ("Get-CrlfixThing 'value'\n", "PS07"),
    "inline_parameters": ("function Get-CrlfixThing($value) { $value }\n", "PS08"),
    "short_name": ("$s = [ordered]@{}\n", "PS09"),
    # Lines of the kind the rules exist to refuse: aliases, one-letter names, positional calls.
    "old_cert_inventory": ("$s[$n] = @(Get-ChildItem -LiteralPath $p | ? { $_ -is [object] } | % { $_ })\n", "PS04"),
    "old_crl_fetch": ("$f = Start-CrlfixFetch $a.urls ([int]$a.timeout_ms)\n", "PS07"),
    "old_common": ("function Get-CrlfixKey($View, $Write) { $View }\n", "PS08"),
}
GOOD = {
    "null_coalescing": "$value = $maybe\nif ($null -eq $value) { $value = 'default' }\n",
    "ternary": "if ($flag) { $word = 'yes' } else { $word = 'no' }\n",
    "and_chain": "Get-Item -Path 'C:\\'\nif ($?) { Write-Output -InputObject 'found' }\n",
    "foreach": "foreach ($item in $items) { $item }\n$items | ForEach-Object -Process { $_ }\n",
    "clean_named_blocks": "function Get-Thing {\n    begin { }\n    process { }\n    end { }\n}\n",
    "named_arguments": "Get-CrlfixThing -Value 'value' -Other:$true @splatted\n",
    "param_block": "function Get-CrlfixThing {\n    param([string]$Value)\n    $Value\n}\n",
    "automatic_variables": "$items | Where-Object -FilterScript { $_ -and $? }\n$args\n",
}
HOST_SCRIPT_END = ("Write-CrlfixDocument -Name 'winhttp_state' -Schema 1 -Content (Get-CrlfixWinHttpState)\n"
                   "Exit-CrlfixScript\n")


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_sample_breaks_its_rule(name: str) -> None:
    source, rule = BAD[name]
    assert rule in {finding.rule for finding in check_source(source)}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_each_good_sample_passes(name: str) -> None:
    assert check_source(GOOD[name]) == []


@pytest.mark.parametrize(("body", "ends_well"), [
    (HOST_SCRIPT_END, True),
    ("Write-CrlfixDocument -Name 'winhttp_state' -Schema 1 -Content @{}\n", False),   # no explicit end
    ("Exit-CrlfixScript\nWrite-CrlfixDocument -Name 'x' -Schema 1 -Content @{}\n", False),  # wrong order
    (HOST_SCRIPT_END + "Write-Output -InputObject 'more'\n", False),   # something after the end
    ("$document = Get-CrlfixWinHttpState\nexit 0\n", False),
])
def test_a_host_script_must_end_with_its_document_and_the_explicit_exit(body: str, ends_well: bool) -> None:
    rules = {finding.rule for finding in check_source(body, host_script=True)}
    assert ("PS06" not in rules) is ends_well
    assert "PS06" not in {finding.rule for finding in check_source(body, host_script=False)}  # fragments are free


def test_every_rule_has_a_sample_that_breaks_it() -> None:
    assert {sample[1] for sample in BAD.values()} | {"PS06"} == set(RULES)


def test_a_finding_names_file_line_and_column() -> None:
    (finding,) = check_source("$value = 1\n$items | % { $_ }\n", path="sample.ps1")
    assert str(finding).startswith("sample.ps1:2:10: PS04 '%' is an alias")


def test_the_cli_fails_on_the_bad_samples_and_passes_the_good(tmp_path: Path, capsys) -> None:
    for name, (source, _rule) in BAD.items():
        (tmp_path / "bad" / f"_{name}.ps1").parent.mkdir(exist_ok=True)
        (tmp_path / "bad" / f"_{name}.ps1").write_bytes(source.encode("utf-8"))
    for name, source in GOOD.items():
        (tmp_path / "good" / f"_{name}.ps1").parent.mkdir(exist_ok=True)
        (tmp_path / "good" / f"_{name}.ps1").write_text(source, encoding="ascii")
    assert main([str(tmp_path / "bad")]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert {line.split(": ")[1].split()[0] for line in printed} == {sample[1] for sample in BAD.values()}
    assert main([str(tmp_path / "good")]) == 0


def test_a_file_named_like_a_host_script_gets_the_end_rule(tmp_path: Path) -> None:
    (tmp_path / "my_script.ps1").write_text("Write-CrlfixDocument -Name 'x' -Schema 1 -Content @{}\n")
    (tmp_path / "_fragment.ps1").write_text("Write-CrlfixDocument -Name 'x' -Schema 1 -Content @{}\n")
    assert [finding.rule for finding in check_file(tmp_path / "my_script.ps1")] == ["PS06"]
    assert check_file(tmp_path / "_fragment.ps1") == []


def test_the_collections_scripts_are_what_make_pslint_checks() -> None:
    names = {path.name for path in collection_ps1_files()}
    assert {"_common.ps1", "host_audit.ps1", "winhttp_apply.ps1"} <= names


def test_defaulted_reads_follow_an_option_table_and_only_for_its_variable() -> None:
    source = (
        "$Table = [ordered]@{\n    TimeoutMs = @{ Name = 'timeout_ms'; Default = 15000 }\n"
        "    MaxBytes = @{ Name = 'max_bytes'; Default = 1 }\n}\n"
        "$fetch = Get-CrlfixOptions -Arguments $CrlfixArgs -Options $Table\n"
        "$other = Get-CrlfixArgument -Arguments $crl -Name 'purge_cache' -Default $false\n"
    )
    root = parse(source).root_node
    assert defaulted_reads(root, "CrlfixArgs") == {"timeout_ms", "max_bytes"}
    assert defaulted_reads(root, "crl") == {"purge_cache"}
