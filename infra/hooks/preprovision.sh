#!/bin/sh
# azd preprovision: before anything is created, check what Bicep cannot check, and give the environment
# its one generated secret. Safe to repeat; run it alone with `azd hooks run preprovision`.
#  - QUERY_TOKEN_KEY (seals listing continuation tokens) is generated once and kept in the azd
#    environment, so provisioning again does not invalidate outstanding tokens.
#  - An existing ACS resource (EXISTING_ACS_RESOURCE_ID) must be in the deployment's subscription, and
#    if it already has an Event Grid system topic (one per source), EXISTING_SYSTEM_TOPIC_NAME must name it.
set -eu

fail() {
  echo "preprovision: $*" >&2
  exit 1
}

# azd passes its environment to hooks; a manual run reads it from azd.
value() {
  eval "current=\${$1:-}"
  if [ -z "$current" ] && command -v azd >/dev/null 2>&1; then
    current=$(azd env get-values 2>/dev/null | sed -n "s/^$1=//p" | sed 's/^"//; s/"$//')
  fi
  printf '%s' "$current"
}

lower() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]'
}

if [ -z "$(value QUERY_TOKEN_KEY)" ]; then
  key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  [ "${#key}" -eq 64 ] || fail "could not read 32 random bytes from /dev/urandom"
  azd env set QUERY_TOKEN_KEY "$key"
  echo "preprovision: generated QUERY_TOKEN_KEY for this environment; it stays until you change it"
fi

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
