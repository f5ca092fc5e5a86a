# cert_inventory, schema 2 (docs/dev/host-scripts.md): the certificates of LocalMachine stores (each once, DER; per
# store which and whether the private key is there) and, with "winhttp", the whole winhttp_state document (the role's
# gather in one command).
$inventory = Read-CrlfixCertificateStores -StoreNames $CrlfixArgs.stores -ChainStoreNames $CrlfixArgs.chain_stores
$winHttpState = $null
if (Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'winhttp' -Default $false) {
    $winHttpState = Get-CrlfixWinHttpStateDocument
}
$content = [ordered]@{
    computer_name = $env:COMPUTERNAME
    certificates = $inventory.certificates
    stores = $inventory.stores
    missing_stores = $inventory.missing_stores
    winhttp = $winHttpState
}
Write-CrlfixDocument -Name 'cert_inventory' -Schema 2 -Content $content
Exit-CrlfixScript
