# WPAD as CryptoAPI would meet it (docs/dev/host-scripts.md, "host_audit", key identities.wpad): when some identity's
# path can reach automatic discovery, ask WinHTTP what it gives for one revocation URL. WinHttpDetectAutoProxyConfigUrl
# finds the PAC URL (DHCP, then DNS; it neither downloads nor runs the file), then WinHttpGetProxyForUrl with
# WINHTTP_AUTOPROXY_CONFIG_URL downloads and runs it for the URL; each AutoConfigURL an identity names is asked the same
# way (Microsoft Learn: "WinHTTP AutoProxy Functions", WinHttpDetectAutoProxyConfigUrl, WinHttpGetProxyForUrl,
# WINHTTP_AUTOPROXY_OPTIONS). Reads only. The calls run on a background thread that the audit waits for at most
# timeout_ms, beside the measurement; a thread still running then is abandoned and ends with the process.
# The C# source, one line per element: Ansible's encoder strips each line of the script, so no here-string.
$CrlfixWpadSource = @(
    'using System;',
    'using System.Collections.Generic;',
    'using System.Runtime.InteropServices;',
    'using System.Threading;',
    'public sealed class CrlfixWpadAnswer {',
    'public string PacUrl;',
    'public string Proxy;',
    'public int Error;',
    'public volatile bool Done;',
    '}',
    'public sealed class CrlfixWpadQuery {',
    'const int AccessTypeNoProxy = 1;',
    'const int AutoProxyConfigUrl = 2;',
    'const int AutoDetectTypeDhcp = 1;',
    'const int AutoDetectTypeDnsA = 2;',
    '[StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]',
    'struct AutoProxyOptions {',
    'public int dwFlags;',
    'public int dwAutoDetectFlags;',
    'public string lpszAutoConfigUrl;',
    'public IntPtr lpvReserved;',
    'public int dwReserved;',
    'public bool fAutoLogonIfChallenged;',
    '}',
    '[StructLayout(LayoutKind.Sequential)]',
    'struct ProxyInfo {',
    'public int dwAccessType;',
    'public IntPtr lpszProxy;',
    'public IntPtr lpszProxyBypass;',
    '}',
    '[DllImport("winhttp.dll", SetLastError = true, CharSet = CharSet.Unicode)]',
    'static extern IntPtr WinHttpOpen(string agent, int accessType, string proxy, string bypass, int flags);',
    '[DllImport("winhttp.dll", SetLastError = true, CharSet = CharSet.Unicode)]',
    'static extern bool WinHttpGetProxyForUrl(IntPtr session, string url, ref AutoProxyOptions options, out ProxyInfo info);',
    '[DllImport("winhttp.dll", SetLastError = true)]',
    'static extern bool WinHttpDetectAutoProxyConfigUrl(int flags, out IntPtr url);',
    '[DllImport("winhttp.dll")]',
    'static extern bool WinHttpCloseHandle(IntPtr handle);',
    '[DllImport("kernel32.dll")]',
    'static extern IntPtr GlobalFree(IntPtr memory);',
    'public readonly CrlfixWpadAnswer Detected;',
    'public readonly List<CrlfixWpadAnswer> Scripts = new List<CrlfixWpadAnswer>();',
    'readonly string url;',
    'readonly Thread thread;',
    'public CrlfixWpadQuery(string url, bool autoDetect, string[] pacUrls) {',
    'this.url = url;',
    'if (autoDetect) { Detected = new CrlfixWpadAnswer(); }',
    'foreach (string pacUrl in pacUrls) { CrlfixWpadAnswer answer = new CrlfixWpadAnswer(); answer.PacUrl = pacUrl; Scripts.Add(answer); }',
    'thread = new Thread(Run);',
    'thread.IsBackground = true;',
    'thread.Start();',
    '}',
    'public bool Wait(int milliseconds) { return thread.Join(Math.Max(0, milliseconds)); }',
    'void Run() {',
    'if (Detected != null) {',
    'IntPtr found;',
    'if (WinHttpDetectAutoProxyConfigUrl(AutoDetectTypeDhcp | AutoDetectTypeDnsA, out found)) {',
    'Detected.PacUrl = Marshal.PtrToStringUni(found);',
    'GlobalFree(found);',
    'Ask(Detected);',
    '} else {',
    'Detected.Error = Marshal.GetLastWin32Error();',
    '}',
    'Detected.Done = true;',
    '}',
    'foreach (CrlfixWpadAnswer answer in Scripts) { Ask(answer); answer.Done = true; }',
    '}',
    'void Ask(CrlfixWpadAnswer answer) {',
    'IntPtr session = WinHttpOpen("crlfix-wpad", AccessTypeNoProxy, null, null, 0);',
    'if (session == IntPtr.Zero) { answer.Error = Marshal.GetLastWin32Error(); return; }',
    'try {',
    'AutoProxyOptions options = new AutoProxyOptions();',
    'options.dwFlags = AutoProxyConfigUrl;',
    'options.lpszAutoConfigUrl = answer.PacUrl;',
    'ProxyInfo info;',
    'if (!WinHttpGetProxyForUrl(session, url, ref options, out info)) { answer.Error = Marshal.GetLastWin32Error(); return; }',
    'if (info.lpszProxy != IntPtr.Zero) { answer.Proxy = Marshal.PtrToStringUni(info.lpszProxy); GlobalFree(info.lpszProxy); }',
    'if (info.lpszProxyBypass != IntPtr.Zero) { GlobalFree(info.lpszProxyBypass); }',
    '} finally {',
    'WinHttpCloseHandle(session);',
    '}',
    '}',
    '}'
) -join "`n"
# WinHTTP's auto-proxy errors by code (Microsoft Learn, "Error Messages (Winhttp.h)"); another code is printed as
# Win32Exception's text.
$CrlfixWpadErrors = @{
    12166 = 'ERROR_WINHTTP_BAD_AUTO_PROXY_SCRIPT'; 12167 = 'ERROR_WINHTTP_UNABLE_TO_DOWNLOAD_SCRIPT'
    12178 = 'ERROR_WINHTTP_AUTO_PROXY_SERVICE_ERROR'; 12180 = 'ERROR_WINHTTP_AUTODETECTION_FAILED'
    12005 = 'ERROR_WINHTTP_INVALID_URL'; 12006 = 'ERROR_WINHTTP_UNRECOGNIZED_SCHEME'
}

function Get-CrlfixWpadNeeds {
    # What discovery the identities part's paths can reach: auto_detect (an entry whose flags ask for it, or one with
    # no WinINet settings on a build below unset_detects_below_build: KB 2623724's third step) and the AutoConfigURLs.
    param([object]$Part, [object]$Request, [int]$Build)
    $belowBuild = [int](Get-CrlfixArgument -Arguments $Request -Name 'unset_detects_below_build' -Default 0)
    $entries = @($Part['caller']) + @(foreach ($account in $Part['accounts']) { if ($null -eq $account.error) { $account } })
    $autoDetect = $false
    $scripts = [System.Collections.Generic.List[string]]::new()
    foreach ($entry in $entries) {
        $settings = $entry.ie
        if (-not $Part['per_user']) { $settings = $Part['machine_ie'] }
        if ($null -eq $settings) {
            if ($Build -lt $belowBuild) { $autoDetect = $true }
            continue
        }
        if ($null -ne $settings.connection_flags -and ($settings.connection_flags -band 8)) { $autoDetect = $true }
        $configUrl = [string]$settings.auto_config_url
        if ($configUrl -match '^https?://' -and -not $scripts.Contains($configUrl)) { $scripts.Add($configUrl) }
    }
    @{ auto_detect = ($autoDetect -and -not $Part['wpad_disabled']); scripts = $scripts.ToArray() }
}

function Start-CrlfixWpad {
    # The discovery for $Url, or $null when no identity's path can reach it (the host then pays nothing).
    param([object]$Part, [object]$Request, [int]$Build, [string]$Url)
    $needs = Get-CrlfixWpadNeeds -Part $Part -Request $Request -Build $Build
    if (-not $needs.auto_detect -and $needs.scripts.Count -eq 0) { return $null }
    $wpad = @{ Url = $Url; Query = $null; Clock = [System.Diagnostics.Stopwatch]::StartNew(); Error = $null
        TimeoutMs = [int](Get-CrlfixArgument -Arguments $Request -Name 'timeout_ms' -Default 10000)
    }
    if ([string]::IsNullOrEmpty($Url)) {
        $wpad.Error = 'no http revocation URL to ask WPAD about'
        return $wpad
    }
    try {
        if (-not ('CrlfixWpadQuery' -as [type])) { Add-Type -TypeDefinition $CrlfixWpadSource -Language CSharp }
        $wpad.Query = New-Object CrlfixWpadQuery -ArgumentList $Url, $needs.auto_detect, ([string[]]$needs.scripts)
    } catch {
        $wpad.Error = Get-CrlfixErrorText -Failure $_
    }
    $wpad
}

function ConvertTo-CrlfixWpadAnswer {
    # {detected, pac_url, proxy, error} of one answer; an answer not done yet has the timeout's text.
    param([object]$Answer, [string]$LateText)
    $entry = [ordered]@{ detected = $false; pac_url = $Answer.PacUrl; proxy = $Answer.Proxy; error = $null }
    if (-not $Answer.Done) {
        $entry.error = $LateText
    } elseif ($Answer.Error -ne 0) {
        $name = $CrlfixWpadErrors[$Answer.Error]
        if ($null -eq $name) { $name = (New-Object System.ComponentModel.Win32Exception($Answer.Error)).Message }
        $entry.error = '' + $name + ' (' + $Answer.Error + ')'
    }
    $entry.detected = $null -ne $Answer.PacUrl
    $entry
}

function Complete-CrlfixWpad {
    # The part's wpad key: {url, auto_detect, scripts, elapsed_ms, error}, waiting what is left of timeout_ms.
    param([hashtable]$Wpad)
    $part = [ordered]@{ url = $Wpad.Url; auto_detect = $null; scripts = @(); elapsed_ms = 0; error = $Wpad.Error }
    if ($null -ne $Wpad.Query) {
        [void]$Wpad.Query.Wait($Wpad.TimeoutMs - [int]$Wpad.Clock.ElapsedMilliseconds)
        $lateText = 'not finished within ' + $Wpad.TimeoutMs + ' ms'
        if ($null -ne $Wpad.Query.Detected) { $part.auto_detect = ConvertTo-CrlfixWpadAnswer -Answer $Wpad.Query.Detected -LateText $lateText }
        $part.scripts = @(foreach ($answer in $Wpad.Query.Scripts) { ConvertTo-CrlfixWpadAnswer -Answer $answer -LateText $lateText })
    }
    $part.elapsed_ms = $Wpad.Clock.ElapsedMilliseconds
    $part
}
