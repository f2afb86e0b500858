# azd postdeploy hook (Windows): see connect-triggers.sh.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..' '..')
$connected = (azd env get-value CONNECT_TRIGGERS 2>$null)
if ($connected -eq 'true') {
  Write-Output 'connect-triggers: already wired (CONNECT_TRIGGERS=true)'
  exit 0
}
azd env set CONNECT_TRIGGERS true
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
azd provision --no-prompt
exit $LASTEXITCODE
