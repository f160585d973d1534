# azd postdeploy: create or update the Event Grid subscription that delivers ACS delivery reports to the
# deployed app. It needs the function to exist, which is why it is not in Bicep. Safe to repeat: the
# subscription is written with one PUT, which creates it the first time and resets it to what is declared
# here afterwards. Run it alone with `azd hooks run postdeploy`.
#
# `az eventgrid system-topic event-subscription create` cannot dead-letter through a managed identity
# (it has no --deadletter-identity), and the storage account accepts no keys, so the subscription is
# written through the ARM API with `az rest`, as the Bicep resource would be.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$SubscriptionName = 'mms-delivery-reports'
$ApiVersion = '2025-02-15'

function Fail([string] $message) {
  Write-Error "postdeploy: $message" -ErrorAction Continue
  exit 1
}

# azd passes the environment's values to hooks as environment variables (`azd hooks run postdeploy`).
function Get-AzdValue([string] $name) {
  $current = [Environment]::GetEnvironmentVariable($name)
  if (-not $current) { Fail "$name is not set: provision this environment first" }
  return $current
}

if (-not (Get-Command az -ErrorAction SilentlyContinue)) { Fail 'the Azure CLI (az) is required (docs/deploy.md)' }

$subscription = Get-AzdValue 'AZURE_SUBSCRIPTION_ID'
$resourceGroup = Get-AzdValue 'AZURE_RESOURCE_GROUP'
$appName = Get-AzdValue 'AZURE_FUNCTION_APP_NAME'
$appId = Get-AzdValue 'AZURE_FUNCTION_APP_ID'
$topic = Get-AzdValue 'EVENT_GRID_SYSTEM_TOPIC_NAME'
$topicGroup = Get-AzdValue 'EVENT_GRID_SYSTEM_TOPIC_RESOURCE_GROUP'
$identityId = Get-AzdValue 'APP_IDENTITY_RESOURCE_ID'
$deadLetterAccountId = Get-AzdValue 'DEAD_LETTER_STORAGE_ACCOUNT_ID'
$deadLetterContainer = Get-AzdValue 'DEAD_LETTER_CONTAINER_NAME'
$ingestPath = Get-AzdValue 'DELIVERY_REPORT_INGEST_PATH'
$maxEventsPerBatch = [int] (Get-AzdValue 'DELIVERY_REPORT_MAX_EVENTS_PER_BATCH')

switch ($ingestPath) {
  'trigger' { $functionName = 'on_delivery_report' }
  'batchedWebhook' { $functionName = 'receive_delivery_reports' }
  default { Fail "DELIVERY_REPORT_INGEST_PATH must be trigger or batchedWebhook, not $ingestPath" }
}

# Right after a deploy the host may not have indexed the functions yet; Event Grid rejects a destination
# it cannot find ("Destination endpoint not found"), so wait until the function is listed.
for ($attempt = 1; ; $attempt++) {
  az functionapp function show --subscription $subscription -g $resourceGroup -n $appName `
    --function-name $functionName --query id --output tsv 2>$null | Out-Null
  if ($LASTEXITCODE -eq 0) { break }
  if ($attempt -ge 30) { Fail "$functionName is not listed on $appName after 5 minutes; once it is, run: azd hooks run postdeploy" }
  Write-Host "postdeploy: waiting for $appName to list $functionName..."
  Start-Sleep -Seconds 10
}

if ($ingestPath -eq 'trigger') {
  $destination = @{
    endpointType = 'AzureFunction'
    properties = @{ resourceId = "$appId/functions/$functionName"; maxEventsPerBatch = 1; preferredBatchSizeInKilobytes = 64 }
  }
} else {
  # A function-level route: the key travels in the URL (Event Grid keeps endpointUrl write-only).
  $hostName = az functionapp show --subscription $subscription -g $resourceGroup -n $appName --query defaultHostName --output tsv
  $key = az functionapp keys list --subscription $subscription -g $resourceGroup -n $appName --query functionKeys.default --output tsv
  if (-not $key) { Fail "no default function key on $appName" }
  $destination = @{
    endpointType = 'WebHook'
    properties = @{
      endpointUrl = "https://$hostName/api/events/delivery-reports?code=$key"
      maxEventsPerBatch = $maxEventsPerBatch
      preferredBatchSizeInKilobytes = 1024
    }
  }
}

$properties = [ordered]@{
  destination = $destination
  filter = @{ includedEventTypes = @('Microsoft.Communication.SMSDeliveryReportReceived') }
  eventDeliverySchema = 'EventGridSchema'
  retryPolicy = @{ maxDeliveryAttempts = 30; eventTimeToLiveInMinutes = 1440 }
}

# Dead letters go to blob storage with the app's identity, which the topic must carry. A topic this
# template created does; an existing one (EXISTING_SYSTEM_TOPIC_NAME) may not.
$topicIdentities = az eventgrid system-topic show --subscription $subscription -g $topicGroup -n $topic `
  --query 'identity.userAssignedIdentities' --output json | Out-String
if ($topicIdentities.ToLowerInvariant().Contains($identityId.ToLowerInvariant())) {
  $properties.deadLetterWithResourceIdentity = @{
    identity = @{ type = 'UserAssigned'; userAssignedIdentity = $identityId }
    deadLetterDestination = @{
      endpointType = 'StorageBlob'
      properties = @{ resourceId = $deadLetterAccountId; blobContainerName = $deadLetterContainer }
    }
  }
} else {
  Write-Warning ("postdeploy: system topic $topic does not carry the app's identity ($identityId), so undeliverable reports are dropped after 24 hours instead of dead-lettered; " +
    "add it with: az eventgrid system-topic update -g $topicGroup -n $topic --mi-user-assigned $identityId")
}

$body = New-TemporaryFile
try {
  @{ properties = $properties } | ConvertTo-Json -Depth 10 | Set-Content -Path $body -Encoding utf8NoBOM
  $url = "/subscriptions/$subscription/resourceGroups/$topicGroup/providers/Microsoft.EventGrid/systemTopics/$topic/eventSubscriptions/${SubscriptionName}?api-version=$ApiVersion"
  az rest --method put --url $url --body "@$body" --headers 'Content-Type=application/json' --output none
  if ($LASTEXITCODE -ne 0) { Fail "writing the Event Grid subscription $SubscriptionName on $topic failed" }
} finally {
  Remove-Item -Path $body -Force -ErrorAction SilentlyContinue
}

# The PUT is accepted at once; Event Grid then validates the endpoint. Report how that ended.
for ($attempt = 1; ; $attempt++) {
  $state = az rest --method get --url $url --query properties.provisioningState --output tsv
  if ($state -eq 'Succeeded') { break }
  if ($state -in @('Failed', 'Canceled')) { Fail "Event Grid subscription $SubscriptionName on ${topic}: $state (see the subscription in the portal)" }
  if ($attempt -ge 30) { Fail "Event Grid subscription $SubscriptionName on $topic is still $state after 5 minutes" }
  Start-Sleep -Seconds 10
}
Write-Host "postdeploy: Event Grid subscription $SubscriptionName on $topic delivers delivery reports to $functionName"
