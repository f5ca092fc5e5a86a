# cert_inventory, schema 1 (docs/dev/host-scripts.md): the certificates of LocalMachine stores (DER and whether the
# private key is there) and, with "winhttp", the whole winhttp_state document (the role's gather in one command).
$inventory = Read-CrlfixCertificateStores -StoreNames $CrlfixArgs.stores -ChainStoreNames $CrlfixArgs.chain_stores
$winHttpState = $null
if (Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'winhttp' -Default $false) {
    $winHttpState = Get-CrlfixWinHttpStateDocument
}
$content = [ordered]@{
    computer_name = $env:COMPUTERNAME
    stores = $inventory.stores
    missing_stores = $inventory.missing_stores
    winhttp = $winHttpState
}
Write-CrlfixDocument -Name 'cert_inventory' -Schema 1 -Content $content
Exit-CrlfixScript
