# Shared by every host script (docs/dev/host-scripts.md): the language check, the arguments, native programs, the one
# JSON document and the one way a script ends. The three header lines ($CrlfixArgs) come before this file.
$ErrorActionPreference = 'Stop'

function Get-CrlfixArgument {
    # One scalar argument: $Arguments.$Name, or $Default when the object, the key or the value is missing.
    param([object]$Arguments, [string]$Name, [object]$Default)
    if ($null -eq $Arguments) { return $Default }
    $property = $Arguments.PSObject.Properties[$Name]
    if ($null -eq $property -or $null -eq $property.Value) { return $Default }
    $property.Value
}

function Get-CrlfixOptions {
    # An engine's parameters read from one part of the arguments: $Options maps each parameter to the argument's
    # name and its default (@{ Name = 'timeout_ms'; Default = 15000 }), so each default is written once, in the
    # engine's fragment, for every script that runs the engine.
    param([object]$Arguments, [System.Collections.IDictionary]$Options)
    $parameters = @{}
    foreach ($parameter in $Options.Keys) {
        $option = $Options[$parameter]
        $parameters[$parameter] = Get-CrlfixArgument -Arguments $Arguments -Name $option.Name -Default $option.Default
    }
    $parameters
}

function Get-CrlfixErrorText {
    # The innermost exception's message: what Windows said, without PowerShell's wrapping
    # ('Exception calling "Send" with "0" argument(s): ...').
    param([object]$Failure)
    $exception = $Failure
    if ($Failure -is [System.Management.Automation.ErrorRecord]) { $exception = $Failure.Exception }
    if ($exception -isnot [System.Exception]) { return ([string]$Failure).Trim() }
    while ($null -ne $exception.InnerException) { $exception = $exception.InnerException }
    $exception.Message.Trim()
}

function Get-CrlfixSystemProgramPath {
    # A Windows program of one registry view: System32 holds the native one, SysWOW64 the 32-bit one. A 32-bit
    # PowerShell on a 64-bit OS reaches the native System32 only as Sysnative (File System Redirector, Microsoft Learn).
    param([string]$FileName, [string]$View)
    $folder = 'System32'
    if ($View -eq 'wow6432') {
        $folder = 'SysWOW64'
    } elseif ([Environment]::Is64BitOperatingSystem -and -not [Environment]::Is64BitProcess) {
        $folder = 'Sysnative'
    }
    [System.IO.Path]::Combine($env:windir, $folder, $FileName)
}

function Invoke-CrlfixNativeCommand {
    # Runs a program and returns @{ rc; output } (stdout and stderr as one text, lines joined with CRLF), never
    # throwing: a program that does not exist (SysWOW64 on a Server Core without WoW64) answers rc 1 and says so.
    param([string]$FilePath, [string[]]$ArgumentList)
    if (-not [System.IO.File]::Exists($FilePath)) {
        return [ordered]@{ rc = 1; output = "$FilePath does not exist on this host" }
    }
    # A program's stderr lines arrive as error records: with 'Stop' the first one would end the script.
    $ErrorActionPreference = 'Continue'
    $lines = @(& $FilePath @ArgumentList 2>&1 | ForEach-Object -Process { [string]$_ })
    [ordered]@{ rc = [int]$LASTEXITCODE; output = $lines -join "`r`n" }
}

function ConvertTo-CrlfixUtcText {
    # A FILETIME (100-ns intervals since 1601, UTC) as the document writes times.
    param([long]$FileTime)
    [DateTime]::FromFileTimeUtc($FileTime).ToString($CrlfixUtcFormat, [System.Globalization.CultureInfo]::InvariantCulture)
}

function New-CrlfixNativeType {
    # A class of static P/Invoke methods made with Reflection.Emit (TypeBuilder.DefineMethod with PinvokeImpl and a
    # DllImportAttribute, Microsoft Learn), without compiling C#: Add-Type starts csc.exe, seconds on a busy host, and
    # these few calls need no code of their own. Every method sets SetLastError (Marshal.GetLastWin32Error reads its
    # error) and passes strings as UTF-16. $Methods: @(@{ Name (the DLL's export); Dll; Returns; Parameters }).
    param([string]$Name, [object[]]$Methods)
    $assemblyName = [System.Reflection.AssemblyName]::new($Name)
    $assembly = [AppDomain]::CurrentDomain.DefineDynamicAssembly($assemblyName, [System.Reflection.Emit.AssemblyBuilderAccess]::Run)
    $type = $assembly.DefineDynamicModule($Name).DefineType($Name, 'Public, Class, Abstract, Sealed')
    $import = [System.Runtime.InteropServices.DllImportAttribute]
    $fields = [System.Reflection.FieldInfo[]]@($import.GetField('SetLastError'), $import.GetField('CharSet'),
        $import.GetField('EntryPoint'))
    foreach ($method in $Methods) {
        $builder = $type.DefineMethod($method.Name, 'Public, Static, PinvokeImpl', $method.Returns, [Type[]]$method.Parameters)
        $values = [object[]]@($true, [System.Runtime.InteropServices.CharSet]::Unicode, $method.Name)
        $attribute = [System.Reflection.Emit.CustomAttributeBuilder]::new($import.GetConstructor([Type[]]@([string])),
            [object[]]@($method.Dll), $fields, $values)
        $builder.SetCustomAttribute($attribute)
    }
    $type.CreateType()
}

function Write-CrlfixDocument {
    # The one JSON document a script prints (docs/dev/host-scripts.md, "The document"): script and schema first,
    # then $Content's keys; one line, ASCII only (\uXXXX for anything else, whatever the console's code page).
    param([string]$Name, [int]$Schema, [System.Collections.IDictionary]$Content)
    $document = [ordered]@{ script = $Name; schema = $Schema }
    foreach ($key in $Content.Keys) { $document[$key] = $Content[$key] }
    # Windows PowerShell 5.1's ConvertTo-Json counts a level for every dictionary and every array and writes what lies
    # deeper than -Depth as its type name: host_audit's identities.accounts[].run.chains[].elements[].status list is
    # the 9th level. 16 leaves room; a test holds every documented path under it.
    $json = ConvertTo-Json -InputObject $document -Compress -Depth $CrlfixDocumentDepth
    if ($json -match '[^\x00-\x7F]') {
        $json = [regex]::Replace($json, '[^\x00-\x7F]', { param($match) '\u{0:x4}' -f [int][char]$match.Value })
    }
    if ($json.Length -gt $CrlfixDeflateAbove) {
        # WinRS returns stdout base64 in each Receive, so a long document is most of what the host sends: it goes as
        # raw DEFLATE (RFC 1951: System.IO.Compression.DeflateStream, zlib's since .NET Framework 4.5) in base64,
        # inside a document that still names the script and schema. The controller's seam inflates it.
        $buffer = [System.IO.MemoryStream]::new()
        $deflate = [System.IO.Compression.DeflateStream]::new($buffer, [System.IO.Compression.CompressionMode]::Compress)
        $bytes = [System.Text.Encoding]::ASCII.GetBytes($json)
        $deflate.Write($bytes, 0, $bytes.Length)
        # Dispose writes the last block; MemoryStream.ToArray still works on the closed stream (Microsoft Learn).
        $deflate.Dispose()
        $json = '{"script":"' + $Name + '","schema":' + $Schema + ',"deflated":"' +
            [Convert]::ToBase64String($buffer.ToArray()) + '"}'
    }
    if ($Host.Name -eq 'ConsoleHost') {
        # powershell.exe (winrm, ssh): straight to the process's stdout and flushed, so the process exit that follows
        # cannot lose it.
        [Console]::Out.WriteLine($json)
        [Console]::Out.Flush()
    } else {
        # A remote runspace (psrp: wsmprovhost) has no console of its own: the document is the pipeline's output.
        Write-Output -InputObject $json
    }
}

function Exit-CrlfixScript {
    # How every script ends, right after its document (or with -Failure, instead of it): exit code 0, or 1 with the
    # error text on stderr, whatever happened before. Over stdin, Ansible's wrapper would otherwise read any earlier
    # non-terminating error as a failure and the document would be thrown away (docs/dev/host-scripts.md).
    param([object]$Failure)
    $exitCode = 0
    if ($null -ne $Failure) { $exitCode = 1 }
    if ($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') {
        # Only cmdlets and the language work here.
        if ($null -ne $Failure) { Write-Error -ErrorRecord $Failure -ErrorAction Continue }
        exit $exitCode
    }
    if ($Host.Name -eq 'ConsoleHost') {
        # powershell.exe: end the process now. Threads still inside a download or a handshake that a timeout or the
        # time box abandoned (CryptoAPI's chain retrieval cannot be interrupted) end with it.
        if ($null -ne $Failure) { [Console]::Error.WriteLine((Get-CrlfixErrorText -Failure $Failure)) }
        [Console]::Out.Flush()
        [Console]::Error.Flush()
        [Environment]::Exit($exitCode)
    }
    # psrp: wsmprovhost outlives this command. Ask every unfinished job to stop and every pool to close, without
    # waiting: a thread inside CryptoAPI's retrieval finishes when the retrieval's own timeout ends, then its runspace
    # closes.
    foreach ($runspacePool in $CrlfixRunspacePools) {
        foreach ($job in $runspacePool.Jobs) {
            if (-not $job.Handle.IsCompleted) { [void]$job.PowerShell.BeginStop($null, $null) }
        }
        [void]$runspacePool.Pool.BeginClose($null, $null)
    }
    if ($null -ne $Failure) { Write-Error -Message (Get-CrlfixErrorText -Failure $Failure) -ErrorAction Continue }
    exit $exitCode
}

# Any error nobody caught ends the script in the same known state on every transport: its text on stderr, exit code 1
# (a trap covers its whole scope; it is set after the functions because it calls one of them).
trap {
    Exit-CrlfixScript -Failure $_
}

# Constrained Language Mode (AppLocker, Windows Defender Application Control) blocks the .NET types, COM objects and
# runspaces these scripts use: say so at once instead of failing at the first blocked call. Everything up to here
# (function definitions, this test, throw) works in every language mode.
if ($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') {
    throw ("FullLanguage required: Windows PowerShell runs in $($ExecutionContext.SessionState.LanguageMode) mode " +
        'on this host (AppLocker or Windows Defender Application Control), which blocks the COM objects, runspaces ' +
        'and SslStream the crlfix host scripts use')
}

# Windows PowerShell 5.1 extends System.Array with type data that can make ConvertTo-Json write an array as
# {"value": [...], "Count": n}; without it every array in the document stays an array.
Remove-TypeData -TypeName System.Array -ErrorAction Ignore

# The runspace pools the engines opened (_pool.ps1), for Exit-CrlfixScript to stop where the process lives on.
$CrlfixRunspacePools = [System.Collections.Generic.List[object]]::new()
# A time in a document: UTC, to the second (docs/dev/host-scripts.md, "The document"; ConvertTo-CrlfixUtcText).
$CrlfixUtcFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
# How deep ConvertTo-Json goes in a document (Write-CrlfixDocument).
$CrlfixDocumentDepth = 16
# A document longer than this (characters of compact JSON) is printed deflated (Write-CrlfixDocument).
$CrlfixDeflateAbove = 1024
