$n = 'WinHttpSettings'; $r = @(); $c = @(); $ops = @($CrlfixArgs.operations)
foreach ($o in $ops) {
    $k = Get-CrlfixKey $o.view; $b = $null; $f = $null
    if ($k) { $b = $k.GetValue($n) }
    if ($null -ne $b) { $f = [Convert]::ToBase64String($b) }
    if ($f -cne $o.expect_b64) { $c += @{ view = $o.view; expected_b64 = $o.expect_b64; found_b64 = $f } }
}
if ($c) { $ops = @() }
foreach ($o in $ops) {
    $x = @{ rc = 1; output = 'unknown action' }
    if ($o.action -eq 'restore') {
        try {
            $k = Get-CrlfixKey $o.view 1
            if ($o.value_b64) { $k.SetValue($n, [Convert]::FromBase64String($o.value_b64), 'Binary') } else { $k.DeleteValue($n, $false) }
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
$s.results = $r; $s.conflicts = $c
Write-CrlfixDocument 'winhttp_apply' 2 $s
