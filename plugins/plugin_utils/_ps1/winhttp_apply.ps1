$r = @()
foreach ($o in @($CrlfixArgs.operations)) {
    $x = @{ rc = 1; output = 'unknown action' }
    if ($o.action -eq 'restore') {
        try {
            $k = Get-CrlfixKey $o.view 1
            if ($o.value_b64) { $k.SetValue('WinHttpSettings', [Convert]::FromBase64String($o.value_b64), 'Binary') } else { $k.DeleteValue('WinHttpSettings', $false) }
            $x = @{ rc = 0; output = '' }
        } catch { $x.output = "$_" }
    } elseif ($o.action -match '^(re)?set$') {
        $a = @('winhttp', $o.action, 'proxy')
        if ($o.action -eq 'set') { $a += "proxy-server=$($o.proxy)"; if ($o.bypass) { $a += "bypass-list=$($o.bypass)" } }
        $x = Invoke-CrlfixNative (Get-CrlfixNetsh $o.view) $a
    }
    $x.view = $o.view; $x.action = $o.action; $r += $x
    if ($x.rc -ne 0) { break }
}
$s = Get-CrlfixWinHttpState
$s.results = $r
Write-CrlfixDocument 'winhttp_apply' 1 $s
