# azd preprovision: before anything is created, check what Bicep cannot check, and give the environment
# its one generated secret. Safe to repeat; run it alone with `azd hooks run preprovision`.
#  - QUERY_TOKEN_KEY (seals listing continuation tokens) is generated once and kept in the azd
#    environment, so provisioning again does not invalidate outstanding tokens.
#  - An existing ACS resource (EXISTING_ACS_RESOURCE_ID) must be in the deployment's subscription, and
#    if it already has an Event Grid system topic (one per source), EXISTING_SYSTEM_TOPIC_NAME must name it.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

function Fail([string] $message) {
  Write-Error "preprovision: $message" -ErrorAction Continue
  exit 1
}

# azd passes its environment to hooks; a manual run reads it from azd.
function Get-AzdValue([string] $name) {
  $current = [Environment]::GetEnvironmentVariable($name)
  if (-not $current -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (azd env get-values 2>$null)) {
      if ($line -match "^$name=(.*)$") { $current = $matches[1] -replace '^"|"$' }
    }
  }
  if ($null -eq $current) { return '' }
  return $current
}

if (-not (Get-AzdValue 'QUERY_TOKEN_KEY')) {
  $bytes = [byte[]]::new(32)
  [System.Security.Cryptography.RandomNumberGenerator]::Fill($bytes)
  $key = -join ($bytes | ForEach-Object { $_.ToString('x2') })
  azd env set QUERY_TOKEN_KEY $key
  if ($LASTEXITCODE -ne 0) { Fail 'azd env set QUERY_TOKEN_KEY failed' }
  Write-Host 'preprovision: generated QUERY_TOKEN_KEY for this environment; it stays until you change it'
}

$acsId = Get-AzdValue 'EXISTING_ACS_RESOURCE_ID'
if ($acsId) {
  if ($acsId -notmatch '^/subscriptions/([^/]+)/resourceGroups/[^/]+/providers/Microsoft\.Communication/communicationServices/[^/]+$') {
    Fail "EXISTING_ACS_RESOURCE_ID is not an ACS resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Communication/communicationServices/<name>): $acsId"
  }
  $acsSubscription = $matches[1]
  $subscription = Get-AzdValue 'AZURE_SUBSCRIPTION_ID'
  if ($acsSubscription -ne $subscription) {
    Fail ("the ACS resource in EXISTING_ACS_RESOURCE_ID is in subscription $acsSubscription, but this environment deploys to $subscription (AZURE_SUBSCRIPTION_ID). " +
      "Its Event Grid system topic and role assignments must be in its own subscription: deploy this environment there (azd env set AZURE_SUBSCRIPTION_ID $acsSubscription) or use an ACS resource in $subscription.")
  }
  if (-not (Get-AzdValue 'EXISTING_SYSTEM_TOPIC_NAME')) {
    if (-not (Get-Command az -ErrorAction SilentlyContinue)) { Fail "the Azure CLI (az) is required to check the ACS resource's Event Grid system topic" }
    $topics = az eventgrid system-topic list --subscription $subscription --query '[].{name: name, source: source}' --output json | ConvertFrom-Json
    if ($LASTEXITCODE -ne 0) { Fail 'az eventgrid system-topic list failed' }
    $found = @($topics | Where-Object { $_.source -eq $acsId }) | Select-Object -First 1
    if ($found -and $found.name -ne (Get-AzdValue 'EVENT_GRID_SYSTEM_TOPIC_NAME')) {
      Fail "the ACS resource already has the Event Grid system topic '$($found.name)' (Event Grid allows one per source). Use it: azd env set EXISTING_SYSTEM_TOPIC_NAME $($found.name)"
    }
  }
}
