# winhttp_state, schema 1 (docs/dev/host-scripts.md): both WinHTTP registry views and the OS; with include_ie_proxy also
# the connecting user's IE proxy settings (what `netsh winhttp import proxy source=ie` copies).
$content = Get-CrlfixWinHttpState
if (Get-CrlfixArgument -Arguments $CrlfixArgs -Name 'include_ie_proxy' -Default $false) {
    $content.ie_proxy = Get-CrlfixInternetExplorerProxy
}
Write-CrlfixDocument -Name 'winhttp_state' -Schema 1 -Content $content
Exit-CrlfixScript
