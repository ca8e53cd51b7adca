<#
.SYNOPSIS
  Install qmtgate as a Windows service with NSSM or WinSW (restart on crash, log files, delayed start).

.DESCRIPTION
  Run in an ADMINISTRATOR PowerShell. The service runs `qmtgate serve --config <Config>` with the Python
  that has xtquant. It is set to "Automatic (Delayed Start)" and restarts 10 s after a crash; qmtgate itself
  keeps reconnecting until QMT is logged in, so the start order does not matter.

  IMPORTANT: run the service as the Windows account that runs QMT (-Account/-Password), or set
  [xtquant] port = 58610 in the config: QMT discovery reads %USERPROFILE%\.xtquant of the service account.

.EXAMPLE
  .\install-service.ps1 -Tool nssm -NssmPath C:\tools\nssm.exe -Config C:\qmtgate\qmtgate.toml `
      -Account ".\trader" -Password (Read-Host -AsSecureString)
.EXAMPLE
  .\install-service.ps1 -Tool winsw -WinswPath C:\tools\WinSW-x64.exe -Config C:\qmtgate\qmtgate.toml
#>
[CmdletBinding()]
param(
  [ValidateSet("nssm", "winsw")] [string] $Tool = "nssm",
  [string] $Name = "qmtgate",
  [Parameter(Mandatory = $true)] [string] $Config,
  [string] $Python = (Get-Command python -ErrorAction SilentlyContinue).Source,
  [string] $NssmPath = "nssm.exe",
  [string] $WinswPath = "WinSW-x64.exe",
  [string] $LogDir = "C:\qmtgate\logs",
  [string] $Account = "",
  [SecureString] $Password = $null,
  [int] $Port = 8000,
  [switch] $OpenFirewall
)
$ErrorActionPreference = "Stop"

if (-not ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole(
    [Security.Principal.WindowsBuiltInRole]::Administrator)) { throw "Run this script in an administrator PowerShell." }
if (-not $Python) { throw "Python not found: pass -Python C:\Path\to\python.exe (the one with xtquant)." }
if (-not (Test-Path $Config)) { throw "Config not found: $Config (start from qmtgate.toml.example)." }
& $Python -c "import qmtgate.cli" ; if ($LASTEXITCODE -ne 0) { throw "qmtgate's server is not installed in $Python (pip install `"qmtgate[server]`")." }

$Config = (Resolve-Path $Config).Path
New-Item -ItemType Directory -Force -Path $LogDir | Out-Null
$WorkDir = Split-Path $Config
$ServeArgs = "-m qmtgate.cli serve --config `"$Config`""
$PlainPassword = if ($Password) { [Runtime.InteropServices.Marshal]::PtrToStringAuto(
    [Runtime.InteropServices.Marshal]::SecureStringToBSTR($Password)) } else { "" }

Write-Host "Checking the set-up first (qmtgate doctor)..."
& $Python -m qmtgate.cli doctor --config "$Config" --skip-import

if ($Tool -eq "nssm") {
  & $NssmPath install $Name $Python $ServeArgs
  & $NssmPath set $Name AppDirectory $WorkDir
  & $NssmPath set $Name DisplayName "qmtgate (QMT market data gateway)"
  & $NssmPath set $Name Start SERVICE_DELAYED_AUTO_START
  & $NssmPath set $Name AppExit Default Restart
  & $NssmPath set $Name AppRestartDelay 10000
  & $NssmPath set $Name AppStdout (Join-Path $LogDir "service-stdout.log")
  & $NssmPath set $Name AppStderr (Join-Path $LogDir "service-stderr.log")
  & $NssmPath set $Name AppRotateFiles 1
  & $NssmPath set $Name AppRotateBytes 20000000
  & $NssmPath set $Name AppEnvironmentExtra "PYTHONIOENCODING=utf-8"
  if ($Account) { & $NssmPath set $Name ObjectName $Account $PlainPassword }
} else {
  $ServiceDir = Join-Path $WorkDir "service"
  New-Item -ItemType Directory -Force -Path $ServiceDir | Out-Null
  $Exe = Join-Path $ServiceDir "$Name.exe"
  Copy-Item $WinswPath $Exe -Force
  $AccountXml = if ($Account) { "<serviceaccount><username>$Account</username><password>$([Security.SecurityElement]::Escape($PlainPassword))</password><allowservicelogon>true</allowservicelogon></serviceaccount>" } else { "" }
  @"
<service>
  <id>$Name</id>
  <name>qmtgate (QMT market data gateway)</name>
  <description>Serves QMT/xtquant market data over REST and WebSocket.</description>
  <executable>$Python</executable>
  <arguments>$ServeArgs</arguments>
  <workingdirectory>$WorkDir</workingdirectory>
  <startmode>Automatic</startmode>
  <delayedAutoStart>true</delayedAutoStart>
  <onfailure action="restart" delay="10 sec"/>
  <onfailure action="restart" delay="30 sec"/>
  <resetfailure>1 hour</resetfailure>
  <env name="PYTHONIOENCODING" value="utf-8"/>
  <logpath>$LogDir</logpath>
  <log mode="roll-by-size"><sizeThreshold>20480</sizeThreshold><keepFiles>10</keepFiles></log>
  $AccountXml
</service>
"@ | Set-Content -Encoding UTF8 (Join-Path $ServiceDir "$Name.xml")
  & $Exe install
}

if ($OpenFirewall) {
  New-NetFirewallRule -DisplayName $Name -Direction Inbound -Protocol TCP -LocalPort $Port -Action Allow -Profile Private | Out-Null
  Write-Host "Firewall: inbound TCP $Port allowed on Private networks only."
}
Start-Service $Name
Write-Host "Installed and started '$Name'. Check: Invoke-WebRequest http://127.0.0.1:$Port/api/v1/health/live"
