# crl_fetch's engine, shared with host_audit (docs/dev/host-scripts.md, "crl_fetch"). Every URL is one synchronous
# WinHttp.WinHttpRequest in a runspace of its own (_pool.ps1), all started at once, so the fetch costs one timeout,
# not their sum. Without SetProxy a request uses HTTPREQUEST_PROXYSETTING_DEFAULT: the netsh winhttp proxy and bypass
# list (Microsoft Learn, IWinHttpRequest::SetProxy), the path CryptoAPI's retrieval takes.
# The bodies of one document together stay under a cap (16 MiB unless the arguments say otherwise): each body is held
# several times on its way out (COM array, byte[], base64, JSON), and a shell past WinRM's MaxMemoryPerShellMB is
# ended, which the controller sees as an unreachable host.
$CrlfixDefaultDocumentCap = 16777216
# Start-CrlfixFetch's options in crl_fetch's arguments and host_audit's crl part (Get-CrlfixOptions).
$CrlfixFetchOptions = [ordered]@{
    TimeoutMs = @{ Name = 'timeout_ms'; Default = 15000 }
    MaxBytes = @{ Name = 'max_bytes'; Default = 4194304 }
    MaxDocumentBytes = @{ Name = 'max_document_bytes'; Default = $CrlfixDefaultDocumentCap }
    ForeignAgent = @{ Name = 'foreign_agent'; Default = $false }
}

function Get-CrlfixCryptoApiAgent {
    # The User-Agent CryptoAPI's retrieval sends (Microsoft-CryptoAPI/<NT version>; proxies often let exactly this agent
    # through: windows-facts.md): the per-URL fetch sends it too, so that it tests the path CryptoAPI would get.
    # NT version from the build (7601: 6.1, 9200: 6.2, 9600: 6.3, 10.0 from 10240 on; the strings are *unverified*).
    $key = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine,
        [Microsoft.Win32.RegistryView]::Registry64).OpenSubKey('SOFTWARE\Microsoft\Windows NT\CurrentVersion')
    $build = [int]$key.GetValue('CurrentBuildNumber')
    $key.Close()
    $version = '10.0'
    if ($build -lt 9200) { $version = '6.1' } elseif ($build -lt 9600) { $version = '6.2' } elseif ($build -lt 10240) { $version = '6.3' }
    'Microsoft-CryptoAPI/' + $version
}

# One URL, run inside a runspace of the pool: only the language, .NET and COM here (no module is loaded in a job).
# With $ForeignAgent, a URL that answered is asked once more, HEAD (no body), with the COM object's own default agent
# instead of CryptoAPI's, read back through WinHttpRequestOption_UserAgentString (0; IWinHttpRequest::Option): the
# two answers side by side tell a proxy that filters by User-Agent. The first answer is kept in $State.result before
# the second request starts, and the job's own timeout counts again from there ($State.started_ms), so a slow second
# answer costs only its own field.
$CrlfixFetchJob = {
    param([string]$Url, [int]$TimeoutMs, [long]$MaxBytes, [System.Diagnostics.Stopwatch]$Clock, [hashtable]$State,
        [hashtable]$Budget, [string]$UserAgent, [bool]$ForeignAgent)
    $State.started_ms = $Clock.ElapsedMilliseconds
    $result = [ordered]@{
        url = $Url; status = $null; elapsed_ms = 0; bytes = $null; body_b64 = $null
        truncated = $false; truncated_by = $null; error = $null; foreign_agent = $null; winhttp_error = $null
        headers = [ordered]@{}
    }
    $request = $null
    try {
        $request = [Activator]::CreateInstance([Type]::GetTypeFromProgID('WinHttp.WinHttpRequest.5.1'))
        # Resolve, connect, send and receive each end after $TimeoutMs (IWinHttpRequest::SetTimeouts).
        $request.SetTimeouts($TimeoutMs, $TimeoutMs, $TimeoutMs, $TimeoutMs)
        $request.Open('GET', $Url, $false)
        # CryptoAPI's agent through WinHttpRequestOption_UserAgentString (0), the documented way to set the request's
        # User-Agent (Microsoft Learn, "WinHttpRequestOption enumeration"; the foreign-agent request reads it back the
        # same way); a User-Agent request header would be a second one or replace it, as WinHTTP decides.
        $request.Option(0) = $UserAgent
        $request.Send()
        $result.status = [int]$request.Status
        # The headers that say who answered (IWinHttpRequest::GetAllResponseHeaders: "name: value" lines): a proxy's
        # Via and its own error page's X-Squid-Error, an authentication challenge, the server. Names lower-cased, a
        # repeated one joined with ', ' (RFC 9110 5.3), each value cut at 512 characters.
        foreach ($line in ([string]$request.GetAllResponseHeaders()).Split([char]10)) {
            $colon = $line.IndexOf(':')
            if ($colon -lt 1) { continue }
            $headerName = $line.Substring(0, $colon).Trim().ToLowerInvariant()
            if (@('via', 'x-squid-error', 'proxy-authenticate', 'www-authenticate', 'server') -notcontains $headerName) { continue }
            $headerValue = $line.Substring($colon + 1).Trim()
            if ($result.headers.Contains($headerName)) { $headerValue = $result.headers[$headerName] + ', ' + $headerValue }
            if ($headerValue.Length -gt 512) { $headerValue = $headerValue.Substring(0, 512) }
            $result.headers[$headerName] = $headerValue
        }
        $body = [byte[]]$request.ResponseBody
        if ($null -eq $body) { $body = [byte[]]::new(0) }
        $result.bytes = $body.Length
        $keep = [int][Math]::Min([long]$body.Length, $MaxBytes)
        if ($body.Length -gt $keep) {
            $result.truncated = $true
            $result.truncated_by = 'max_bytes'
        }
        # The document's cap, first come first served; a body that would pass it is left out whole (a cut CRL is
        # unreadable anyway) and smaller ones after it may still fit.
        [System.Threading.Monitor]::Enter($Budget.SyncRoot)
        try {
            $fits = $keep -le $Budget.left_bytes
            if ($fits) { $Budget.left_bytes -= $keep }
        } finally {
            [System.Threading.Monitor]::Exit($Budget.SyncRoot)
        }
        if (-not $fits) {
            $keep = 0
            $result.truncated = $true
            $result.truncated_by = 'document_cap'
        }
        $result.body_b64 = [Convert]::ToBase64String($body, 0, $keep)
    } catch {
        $exception = $_.Exception
        while ($null -ne $exception.InnerException) { $exception = $exception.InnerException }
        $result.error = $exception.Message.Trim()
        # A request that got no HTTP answer fails with the WinHTTP error as the COM exception's HRESULT,
        # HRESULT_FROM_WIN32(code) = 0x8007xxxx: its low word is the code (12002 ERROR_WINHTTP_TIMEOUT, 12007
        # ERROR_WINHTTP_NAME_NOT_RESOLVED, 12029 ERROR_WINHTTP_CANNOT_CONNECT, 12030 ERROR_WINHTTP_CONNECTION_ERROR;
        # Microsoft Learn, "Error Messages (Winhttp.h)", "HRESULT_FROM_WIN32 macro"). WinHTTP's codes are 12000-12199.
        $hresult = [int]$exception.HResult
        $code = $hresult -band 0xFFFF
        if (($hresult -band 0x7FFF0000) -eq 0x00070000 -and $code -ge 12000 -and $code -le 12199 -and $null -eq $result.status) {
            $result.winhttp_error = $code
        }
    } finally {
        if ($null -ne $request) { [void][System.Runtime.InteropServices.Marshal]::ReleaseComObject($request) }
    }
    $result.elapsed_ms = $Clock.ElapsedMilliseconds
    $State.result = $result
    if (-not $ForeignAgent -or $null -eq $result.status) { return }
    $State.started_ms = $Clock.ElapsedMilliseconds
    $foreign = [ordered]@{ agent = $null; status = $null; error = $null }
    $request = $null
    try {
        $request = [Activator]::CreateInstance([Type]::GetTypeFromProgID('WinHttp.WinHttpRequest.5.1'))
        $request.SetTimeouts($TimeoutMs, $TimeoutMs, $TimeoutMs, $TimeoutMs)
        $request.Open('HEAD', $Url, $false)
        $foreign.agent = [string]$request.Option(0)
        $request.Send()
        $foreign.status = [int]$request.Status
    } catch {
        $exception = $_.Exception
        while ($null -ne $exception.InnerException) { $exception = $exception.InnerException }
        $foreign.error = $exception.Message.Trim()
    } finally {
        if ($null -ne $request) { [void][System.Runtime.InteropServices.Marshal]::ReleaseComObject($request) }
    }
    $State.foreign = $foreign
}

function New-CrlfixFetchResult {
    # A URL's result that no request produced: refused before sending, or abandoned by the main thread.
    param([string]$Url, [long]$ElapsedMs, [string]$ErrorText, [object]$WinHttpError = $null)
    [ordered]@{
        url = $Url; status = $null; elapsed_ms = $ElapsedMs; bytes = $null; body_b64 = $null
        truncated = $false; truncated_by = $null; error = $ErrorText; foreign_agent = $null
        winhttp_error = $WinHttpError; headers = [ordered]@{}
    }
}

function Complete-CrlfixFetchResult {
    # A URL's result from its job's state: the first answer, and with $ForeignAgent the second request's
    # (foreign_agent; null when not asked, or when the first request got no answer). $ErrorText is set when the job
    # was abandoned: an answer already in hand is kept and only the second request gets the text.
    param([hashtable]$State, [bool]$ForeignAgent, [string]$ErrorText)
    $result = $State.result
    $result.foreign_agent = $null
    if ($ForeignAgent -and $null -ne $result.status) {
        $result.foreign_agent = $State.foreign
        if ($null -eq $result.foreign_agent) { $result.foreign_agent = [ordered]@{ agent = $null; status = $null; error = $ErrorText } }
    }
    $result
}

function Test-CrlfixFetchableUrl {
    param([string]$Url)
    $Url -match '^https?://'
}

function Start-CrlfixFetch {
    # Starts the request of every http or https URL in $RunspacePool at once (it needs one runspace per such URL);
    # returns the fetch for Complete-CrlfixFetch. elapsed_ms counts from here.
    param([hashtable]$RunspacePool, [string[]]$Urls, [int]$TimeoutMs, [long]$MaxBytes, [long]$MaxDocumentBytes,
        [bool]$ForeignAgent)
    $userAgent = Get-CrlfixCryptoApiAgent
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $budget = [hashtable]::Synchronized(@{ left_bytes = $MaxDocumentBytes })
    $requests = @(foreach ($url in $Urls) {
            $request = @{ Url = $url; Job = $null }
            if (Test-CrlfixFetchableUrl -Url $url) {
                $state = [hashtable]::Synchronized(@{ started_ms = $null; result = $null; foreign = $null })
                $jobParameters = @{
                    RunspacePool = $RunspacePool; ScriptBlock = $CrlfixFetchJob; State = $state; TimeoutMs = $TimeoutMs
                    ArgumentList = @($url, $TimeoutMs, $MaxBytes, $clock, $state, $budget, $userAgent, $ForeignAgent)
                }
                $request.Job = Start-CrlfixJob @jobParameters
            }
            $request
        })
    @{ Clock = $clock; Requests = $requests; ForeignAgent = $ForeignAgent }
}

function Complete-CrlfixFetch {
    # Waits for the fetch and returns its results, one per URL in order. A request still running $TimeoutMs after it
    # started is abandoned and answered 'The operation timed out' (ERROR_WINHTTP_TIMEOUT's text); with a $TimeBox
    # (host_audit), one still running when the box ends gets the box's text, unless its own timeout ended first.
    # When only the foreign-agent request was still running, the URL keeps its answer and foreign_agent the text.
    param([hashtable]$Fetch, [hashtable]$TimeBox)
    $jobs = @(foreach ($request in $Fetch.Requests) { if ($null -ne $request.Job) { $request.Job } })
    Wait-CrlfixJobs -Jobs $jobs -Clock $Fetch.Clock -TimeBox $TimeBox
    $results = @(foreach ($request in $Fetch.Requests) {
            $job = $request.Job
            $now = $Fetch.Clock.ElapsedMilliseconds
            if ($null -eq $job) {
                New-CrlfixFetchResult -Url $request.Url -ElapsedMs 0 -ErrorText 'Only http and https URLs are fetched'
            } elseif ($job.Outcome -ne 'finished') {
                # Its own timeout (the request's SetTimeouts ends it with ERROR_WINHTTP_TIMEOUT, 12002, as this wait
                # gives up on it); a request the time box cut has no WinHTTP error of its own.
                $text = 'The operation timed out'
                $code = 12002
                if ($job.Outcome -eq 'cut') {
                    $TimeBox.Hit = $true
                    $text = $TimeBox.Text
                    $code = $null
                }
                if ($null -eq $job.State.result) {
                    New-CrlfixFetchResult -Url $request.Url -ElapsedMs $now -ErrorText $text -WinHttpError $code
                } else {
                    Complete-CrlfixFetchResult -State $job.State -ForeignAgent $Fetch.ForeignAgent -ErrorText $text
                }
            } else {
                try {
                    Complete-CrlfixJob -Job $job
                    Complete-CrlfixFetchResult -State $job.State -ForeignAgent $Fetch.ForeignAgent -ErrorText $null
                } catch {
                    New-CrlfixFetchResult -Url $request.Url -ElapsedMs $now -ErrorText (Get-CrlfixErrorText -Failure $_)
                }
            }
        })
    # The leading comma returns the array as one object: an empty or one-element list stays a list.
    , $results
}

function Invoke-CrlfixUrlCachePurge {
    # `certutil -urlcache * delete`: the calling account's CryptoAPI URL cache (Microsoft Learn, certutil).
    $certutil = Get-CrlfixSystemProgramPath -FileName 'certutil.exe' -View 'native'
    Invoke-CrlfixNativeCommand -FilePath $certutil -ArgumentList @('-urlcache', '*', 'delete')
}
