# azd postdeploy: once the code (and so on_delivery_report) exists, create the Event Grid subscription.
$ErrorActionPreference = 'Stop'
$enabled = azd env get-value DEPLOY_EVENT_SUBSCRIPTION 2>$null
if ($enabled -eq 'true') {
  Write-Host 'Event Grid subscription already enabled; azd provision keeps it in place.'
  exit 0
}
azd env set DEPLOY_EVENT_SUBSCRIPTION true
azd provision --no-prompt
