<#
.SYNOPSIS
  Stop and remove the qmtgate service installed by install-service.ps1 (keys, certificates, config and logs
  are left in place).
.EXAMPLE
  .\uninstall-service.ps1 -Tool nssm -NssmPath C:\tools\nssm.exe
#>
[CmdletBinding()]
param(
  [ValidateSet("nssm", "winsw")] [string] $Tool = "nssm",
  [string] $Name = "qmtgate",
  [string] $NssmPath = "nssm.exe",
  [string] $ServiceDir = "C:\qmtgate\service",
  [switch] $RemoveFirewallRule
)
$ErrorActionPreference = "Stop"
if (Get-Service $Name -ErrorAction SilentlyContinue) { Stop-Service $Name -ErrorAction SilentlyContinue }
if ($Tool -eq "nssm") {
  & $NssmPath remove $Name confirm
} else {
  & (Join-Path $ServiceDir "$Name.exe") uninstall
}
if ($RemoveFirewallRule) { Remove-NetFirewallRule -DisplayName $Name -ErrorAction SilentlyContinue }
Write-Host "Removed service '$Name'."
