#!/bin/sh
# azd postdeploy: once the code (and so on_delivery_report) exists, create the Event Grid subscription.
set -eu
if [ "$(azd env get-value DEPLOY_EVENT_SUBSCRIPTION 2>/dev/null || true)" = "true" ]; then
  echo "Event Grid subscription already enabled; azd provision keeps it in place."
  exit 0
fi
azd env set DEPLOY_EVENT_SUBSCRIPTION true
azd provision --no-prompt
