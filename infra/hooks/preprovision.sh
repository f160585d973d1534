#!/bin/sh
# azd preprovision: before anything is created, check what Bicep cannot check. Safe to repeat; run it
# alone with `azd hooks run preprovision` (azd passes the environment's values; this script runs no azd).
#  - An existing ACS resource (EXISTING_ACS_RESOURCE_ID) must be in the deployment's subscription, and
#    if it already has an Event Grid system topic (one per source), EXISTING_SYSTEM_TOPIC_NAME must name it.
set -eu

fail() {
  echo "preprovision: $*" >&2
  exit 1
}

# azd passes the environment's values to hooks as environment variables.
value() {
  eval "current=\${$1:-}"
  printf '%s' "$current"
}

lower() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]'
}

acs_id=$(value EXISTING_ACS_RESOURCE_ID)
if [ -n "$acs_id" ]; then
  acs_id_lower=$(lower "$acs_id")
  case "$acs_id_lower" in
    /subscriptions/*/resourcegroups/*/providers/microsoft.communication/communicationservices/*) ;;
    *) fail "EXISTING_ACS_RESOURCE_ID is not an ACS resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Communication/communicationServices/<name>): $acs_id" ;;
  esac
  subscription=$(value AZURE_SUBSCRIPTION_ID)
  acs_subscription=$(printf '%s' "$acs_id" | cut -d/ -f3)
  if [ "$(lower "$acs_subscription")" != "$(lower "$subscription")" ]; then
    fail "the ACS resource in EXISTING_ACS_RESOURCE_ID is in subscription $acs_subscription, but this environment deploys to $subscription (AZURE_SUBSCRIPTION_ID). Its Event Grid system topic and role assignments must be in its own subscription: deploy this environment there (azd env set AZURE_SUBSCRIPTION_ID $acs_subscription) or use an ACS resource in $subscription."
  fi
  if [ -z "$(value EXISTING_SYSTEM_TOPIC_NAME)" ]; then
    command -v az >/dev/null 2>&1 || fail "the Azure CLI (az) is required to check the ACS resource's Event Grid system topic"
    found=$(az eventgrid system-topic list --subscription "$subscription" --query "[].[name, source]" --output tsv |
      awk -F '\t' -v source="$acs_id_lower" 'tolower($2) == source { print $1; exit }')
    if [ -n "$found" ] && [ "$found" != "$(value EVENT_GRID_SYSTEM_TOPIC_NAME)" ]; then
      fail "the ACS resource already has the Event Grid system topic '$found' (Event Grid allows one per source). Use it: azd env set EXISTING_SYSTEM_TOPIC_NAME $found"
    fi
  fi
fi
