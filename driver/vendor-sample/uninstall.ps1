#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Stops and removes @VENDOR_SERVICE@, the wanlayer SDK's sample vendor driver.

.DESCRIPTION
    1. sc.exe stop @VENDOR_SERVICE@: its DriverUnload stops its release timer, deregisters from
       wanlayer (which hands on every packet it still queued) and lets go of \Device\WanLayer.
    2. sc.exe delete @VENDOR_SERVICE@, and removes %SystemRoot%\System32\drivers\@VENDOR_SERVICE@.sys.

    Run it before uninstall.ps1: wanlayer cannot unload while @VENDOR_SERVICE@ holds its device.

    Stamped by `cargo xtask package` for @ARCH@, wanlayer @VERSION@.
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$VendorService = '@VENDOR_SERVICE@'
$Target = Join-Path $env:SystemRoot "System32\drivers\$VendorService.sys"

function Step([string]$Text) { Write-Host "==> $Text" -ForegroundColor Cyan }

if (-not (Get-Service -Name $VendorService -ErrorAction SilentlyContinue)) {
    Write-Host "the service '$VendorService' is not installed"
} else {
    Step "Stopping $VendorService"
    & sc.exe stop $VendorService | Out-Host
    Step "Deleting the service $VendorService"
    & sc.exe delete $VendorService | Out-Host
}
if (Test-Path $Target) {
    Step "Removing $Target"
    Remove-Item -Path $Target -Force
}
