#!/bin/sh
# azd postdeploy: create or update the Event Grid subscription that delivers ACS delivery reports to the
# deployed app. It needs the function to exist, which is why it is not in Bicep. Safe to repeat: the
# subscription is written with one PUT, which creates it the first time and resets it to what is declared
# here afterwards. Run it alone with `azd hooks run postdeploy`.
#
# `az eventgrid system-topic event-subscription create` cannot dead-letter through a managed identity
# (it has no --deadletter-identity), and the storage account accepts no keys, so the subscription is
# written through the ARM API with `az rest`, as the Bicep resource would be.
set -eu

SUBSCRIPTION_NAME=mms-delivery-reports
API_VERSION=2025-02-15

fail() {
  echo "postdeploy: $*" >&2
  exit 1
}

# azd passes the environment's values to hooks as environment variables (`azd hooks run postdeploy`).
value() {
  eval "current=\${$1:-}"
  [ -n "$current" ] || fail "$1 is not set: provision this environment first"
  printf '%s' "$current"
}

command -v az >/dev/null 2>&1 || fail "the Azure CLI (az) is required (docs/deploy.md)"

subscription=$(value AZURE_SUBSCRIPTION_ID)
resource_group=$(value AZURE_RESOURCE_GROUP)
app_name=$(value AZURE_FUNCTION_APP_NAME)
app_id=$(value AZURE_FUNCTION_APP_ID)
topic=$(value EVENT_GRID_SYSTEM_TOPIC_NAME)
topic_group=$(value EVENT_GRID_SYSTEM_TOPIC_RESOURCE_GROUP)
identity_id=$(value APP_IDENTITY_RESOURCE_ID)
dead_letter_account_id=$(value DEAD_LETTER_STORAGE_ACCOUNT_ID)
dead_letter_container=$(value DEAD_LETTER_CONTAINER_NAME)
ingest_path=$(value DELIVERY_REPORT_INGEST_PATH)
max_events_per_batch=$(value DELIVERY_REPORT_MAX_EVENTS_PER_BATCH)

case "$ingest_path" in
  trigger) function_name=on_delivery_report ;;
  batchedWebhook) function_name=receive_delivery_reports ;;
  *) fail "DELIVERY_REPORT_INGEST_PATH must be trigger or batchedWebhook, not $ingest_path" ;;
esac

# Right after a deploy the host may not have indexed the functions yet; Event Grid rejects a destination
# it cannot find ("Destination endpoint not found"), so wait until the function is listed.
attempt=0
until az functionapp function show --subscription "$subscription" -g "$resource_group" -n "$app_name" \
  --function-name "$function_name" --query id --output tsv >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  [ "$attempt" -lt 30 ] || fail "$function_name is not listed on $app_name after 5 minutes; once it is, run: azd hooks run postdeploy"
  echo "postdeploy: waiting for $app_name to list $function_name..."
  sleep 10
done

if [ "$ingest_path" = trigger ]; then
  destination="{\"endpointType\": \"AzureFunction\", \"properties\": {\"resourceId\": \"$app_id/functions/$function_name\", \"maxEventsPerBatch\": 1, \"preferredBatchSizeInKilobytes\": 64}}"
else
  # A function-level route: the key travels in the URL (Event Grid keeps endpointUrl write-only).
  host=$(az functionapp show --subscription "$subscription" -g "$resource_group" -n "$app_name" --query defaultHostName --output tsv)
  key=$(az functionapp keys list --subscription "$subscription" -g "$resource_group" -n "$app_name" --query functionKeys.default --output tsv)
  [ -n "$key" ] || fail "no default function key on $app_name"
  destination="{\"endpointType\": \"WebHook\", \"properties\": {\"endpointUrl\": \"https://$host/api/events/delivery-reports?code=$key\", \"maxEventsPerBatch\": $max_events_per_batch, \"preferredBatchSizeInKilobytes\": 1024}}"
fi

# Dead letters go to blob storage with the app's identity, which the topic must carry. A topic this
# template created does; an existing one (EXISTING_SYSTEM_TOPIC_NAME) may not.
dead_letter=""
topic_identities=$(az eventgrid system-topic show --subscription "$subscription" -g "$topic_group" -n "$topic" \
  --query "identity.userAssignedIdentities" --output json | tr '[:upper:]' '[:lower:]')
case "$topic_identities" in
  *"$(printf '%s' "$identity_id" | tr '[:upper:]' '[:lower:]')"*)
    dead_letter=", \"deadLetterWithResourceIdentity\": {\"identity\": {\"type\": \"UserAssigned\", \"userAssignedIdentity\": \"$identity_id\"}, \"deadLetterDestination\": {\"endpointType\": \"StorageBlob\", \"properties\": {\"resourceId\": \"$dead_letter_account_id\", \"blobContainerName\": \"$dead_letter_container\"}}}"
    ;;
  *)
    echo "postdeploy: warning: system topic $topic does not carry the app's identity ($identity_id), so undeliverable reports are dropped after 24 hours instead of dead-lettered; add it with: az eventgrid system-topic update -g $topic_group -n $topic --mi-user-assigned $identity_id" >&2
    ;;
esac

body=$(mktemp)
trap 'rm -f "$body"' EXIT
cat >"$body" <<JSON
{"properties": {
  "destination": $destination,
  "filter": {"includedEventTypes": ["Microsoft.Communication.SMSDeliveryReportReceived"]},
  "eventDeliverySchema": "EventGridSchema",
  "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}$dead_letter
}}
JSON

url="/subscriptions/$subscription/resourceGroups/$topic_group/providers/Microsoft.EventGrid/systemTopics/$topic/eventSubscriptions/$SUBSCRIPTION_NAME?api-version=$API_VERSION"
az rest --method put --url "$url" --body "@$body" --headers "Content-Type=application/json" --output none

# The PUT is accepted at once; Event Grid then validates the endpoint. Report how that ended.
attempt=0
while :; do
  state=$(az rest --method get --url "$url" --query properties.provisioningState --output tsv)
  case "$state" in
    Succeeded) break ;;
    Failed | Canceled) fail "Event Grid subscription $SUBSCRIPTION_NAME on $topic: $state (see the subscription in the portal)" ;;
  esac
  attempt=$((attempt + 1))
  [ "$attempt" -lt 30 ] || fail "Event Grid subscription $SUBSCRIPTION_NAME on $topic is still $state after 5 minutes"
  sleep 10
done
echo "postdeploy: Event Grid subscription $SUBSCRIPTION_NAME on $topic delivers delivery reports to $function_name"
