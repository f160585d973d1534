# azd preprovision: before anything is created, check what Bicep cannot check. Safe to repeat; run it
# alone with `azd hooks run preprovision` (azd passes the environment's values; this script runs no azd).
  acs_group=$(printf '%s' "$acs_id" | cut -d/ -f5)
  if [ "$(lower "$acs_group")" = "$(lower "rg-$(value AZURE_ENV_NAME)")" ]; then
    fail "the ACS resource in EXISTING_ACS_RESOURCE_ID is in rg-$(value AZURE_ENV_NAME), the resource group this environment creates and azd down deletes (with the ACS resource and its phone numbers). Keep it in a resource group of its own."
  fi
  subscription=$(value AZURE_SUBSCRIPTION_ID)
  acs_subscription=$(printf '%s' "$acs_id" | cut -d/ -f3)$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

function Fail([string] $message) {
  Write-Error "preprovision: $message" -ErrorAction Continue
  exit 1
}

# azd passes the environment's values to hooks as environment variables.
function Get-AzdValue([string] $name) {
  $current = [Environment]::GetEnvironmentVariable($name)
  if ($null -eq $current) { return '' }
  return $current
}

$acsId = Get-AzdValue 'EXISTING_ACS_RESOURCE_ID'
if (-not $acsId) {
  Fail ("EXISTING_ACS_RESOURCE_ID is not set. The template does not create the ACS resource, so that azd down cannot delete it with the phone numbers bought on it. Create one in a resource group of its own:`n" +
    "  az group create -n rg-acs -l eastus`n" +
    "  az communication create -n my-acs -g rg-acs --location global --data-location 'United States'`n" +
    "  az lock create -n keep-acs --lock-type CanNotDelete -g rg-acs`n" +
    "buy an MMS-capable number on it, then: azd env set EXISTING_ACS_RESOURCE_ID <its id>`n" +
    "(the id: az communication show -n my-acs -g rg-acs --query id -o tsv)")
}
if ($acsId) {
  if ($acsId -notmatch '^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Communication/communicationServices/[^/]+$') {
    Fail "EXISTING_ACS_RESOURCE_ID is not an ACS resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Communication/communicationServices/<name>): $acsId"
  }
  $acsSubscription = $matches[1]
  $envGroup = 'rg-' + (Get-AzdValue 'AZURE_ENV_NAME')
  if ($matches[2] -eq $envGroup) {
    Fail "the ACS resource in EXISTING_ACS_RESOURCE_ID is in $envGroup, the resource group this environment creates and azd down deletes (with the ACS resource and its phone numbers). Keep it in a resource group of its own."
  }
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
