#!/bin/sh
# azd preprovision: before anything is created, check what Bicep cannot check. Safe to repeat; run it
# alone with `azd hooks run preprovision` (azd passes the environment's values; this script runs no azd).
#  - The ACS resource (EXISTING_ACS_RESOURCE_ID) is required: the template never creates one, so that azd down
#    cannot delete it with its phone numbers. It must be in the deployment's subscription, not in rg-<env>
#    (the group azd down deletes), and if it already has an Event Grid system topic (one per source),
#    EXISTING_SYSTEM_TOPIC_NAME must name it.
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
if [ -z "$acs_id" ]; then
  {
    echo "preprovision: EXISTING_ACS_RESOURCE_ID is not set. The template does not create the ACS resource, so that"
    echo "azd down cannot delete it with the phone numbers bought on it. Create one in a resource group of its own:"
    echo "  az group create -n rg-acs -l eastus"
    echo "  az communication create -n my-acs -g rg-acs --location global --data-location 'United States'"
    echo "  az lock create -n keep-acs --lock-type CanNotDelete -g rg-acs"
    echo "buy an MMS-capable number on it, then: azd env set EXISTING_ACS_RESOURCE_ID <its id>"
    echo "(the id: az communication show -n my-acs -g rg-acs --query id -o tsv)"
  } >&2
  exit 1
fi
if [ -n "$acs_id" ]; then
  acs_id_lower=$(lower "$acs_id")
  case "$acs_id_lower" in
    /subscriptions/*/resourcegroups/*/providers/microsoft.communication/communicationservices/*) ;;
    *) fail "EXISTING_ACS_RESOURCE_ID is not an ACS resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Communication/communicationServices/<name>): $acs_id" ;;
  esac
  acs_group=$(printf '%s' "$acs_id" | cut -d/ -f5)
  if [ "$(lower "$acs_group")" = "$(lower "rg-$(value AZURE_ENV_NAME)")" ]; then
    fail "the ACS resource in EXISTING_ACS_RESOURCE_ID is in rg-$(value AZURE_ENV_NAME), the resource group this environment creates and azd down deletes (with the ACS resource and its phone numbers). Keep it in a resource group of its own."
  fi
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
