# cert_inventory: DER + HasPrivateKey per Cert:\LocalMachine store (docs/dev/host-scripts.md)
$s = [ordered]@{}; $m = @(); $w = $null
foreach ($n in @($CrlfixArgs.stores) + @($CrlfixArgs.chain_stores)) {
    $p = 'Cert:\LocalMachine\' + $n
    if ($s.Contains($n) -or $m -contains $n) { continue }
    if (-not (Test-Path -LiteralPath $p)) { $m += $n; continue }
    $s[$n] = @(Get-ChildItem -LiteralPath $p | ? { $_ -is [Security.Cryptography.X509Certificates.X509Certificate2] } |
        % { [ordered]@{ der_b64 = [Convert]::ToBase64String($_.RawData); has_private_key = $_.HasPrivateKey } })
}
if ($CrlfixArgs.winhttp) { $w = Get-CrlfixWinHttpState; $w['script'] = 'winhttp_state'; $w['schema'] = 1 }
Write-CrlfixDocument 'cert_inventory' 1 ([ordered]@{ computer_name = $env:COMPUTERNAME; stores = $s; missing_stores = $m; winhttp = $w })
