// mms-tracker on Azure: a Flex Consumption Function App with a user-assigned identity, storage
// without shared keys, Application Insights without local auth, an existing ACS resource (never
// created here) and its Event Grid system topic, and a custom topic for the app's status-change events. The subscription to on_delivery_report needs the deployed code, so
// azd's postdeploy hook creates it with az (infra/hooks/); the outputs below are what the hooks read.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of the resource group and its resources (Flex Consumption must be available there).')
param location string

@minLength(1)
@description('Resource id of the ACS resource to send through, in this subscription and in a resource group of its own (not rg-<env>, which azd down deletes). The template never creates one: azd down must not delete the phone numbers bought on it.')
param existingAcsResourceId string

@description('Name of the Event Grid system topic the existing ACS resource already has (one per source is allowed), in the ACS resource\'s resource group; empty: create one.')
param existingSystemTopicName string = ''

@description('Comma-separated E.164 numbers the app may send from (numbers bought on the ACS resource).')
param mmsSenders string

@description('How delivery reports reach the app: trigger (one event per invocation) or batchedWebhook (POST /api/events/delivery-reports with batches).')
@allowed(['trigger', 'batchedWebhook'])
param ingestPath string = 'trigger'

@description('Events per request on the batchedWebhook path (Event Grid allows up to 5000).')
@minValue(1)
@maxValue(5000)
param maxEventsPerBatch int = 100

@description('Hours without a final delivery report before a message is Expired.')
param expiryWindowHours int = 72

@description('Principal id of the identity running the deployment (azd sets it), granted read access to the tracking tables.')
param principalId string = ''

@description('Type of that principal: User when a person runs azd, ServicePrincipal in a CI pipeline.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var tablePrefix = 'mms'
// An existing ACS resource must be in this subscription (infra/hooks/preprovision checks it first).
var acsResourceGroupName = split(existingAcsResourceId, '/')[4]
var systemTopicName = empty(existingSystemTopicName) ? 'egst-${token}' : existingSystemTopicName
var systemTopicResourceGroupName = empty(existingSystemTopicName) ? rg.name : acsResourceGroupName

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  scope: rg
  name: 'identity'
  params: {
    name: 'id-${token}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  scope: rg
  name: 'storage'
  params: {
    name: 'st${token}'
    location: location
    tags: tags
    tablePrefix: tablePrefix
    deploymentContainerName: 'app-package-${token}'
    deadLetterContainerName: 'eventgrid-deadletters'
  }
}

module monitoring 'app/monitoring.bicep' = {
  scope: rg
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${token}'
    applicationInsightsName: 'appi-${token}'
    location: location
    tags: tags
  }
}

module alerts 'app/alerts.bicep' = {
  scope: rg
  name: 'alerts'
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
  }
}

module acs 'app/acs.bicep' = {
  scope: rg
  name: 'acs'
  params: {
    resourceId: existingAcsResourceId
  }
}

module statusTopic 'app/status-topic.bicep' = {
  scope: rg
  name: 'status-topic'
  params: {
    name: 'egt-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
  }
}

module functionApp 'app/function-app.bicep' = {
  scope: rg
  name: 'function-app'
  params: {
    planName: 'plan-${token}'
    appName: 'func-${token}'
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    tableEndpoint: storage.outputs.tableEndpoint
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    acsEndpoint: acs.outputs.endpoint
    mmsSenders: mmsSenders
    tablePrefix: tablePrefix
    expiryWindowHours: expiryWindowHours
    statusEventsEndpoint: statusTopic.outputs.endpoint
  }
}

module rbac 'app/rbac.bicep' = {
  scope: rg
  name: 'rbac'
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    acsResourceId: acs.outputs.id
    statusTopicName: statusTopic.outputs.name
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module systemTopic 'app/system-topic.bicep' = if (empty(existingSystemTopicName)) {
  scope: rg
  name: 'system-topic'
  params: {
    name: systemTopicName
    acsResourceId: acs.outputs.id
    identityId: identity.outputs.id
    tags: tags
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output ACS_ENDPOINT string = acs.outputs.endpoint
output TRACKING_STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
// Read by infra/hooks/postdeploy to create the Event Grid subscription to on_delivery_report.
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output EVENT_GRID_SYSTEM_TOPIC_NAME string = systemTopicName
output EVENT_GRID_SYSTEM_TOPIC_RESOURCE_GROUP string = systemTopicResourceGroupName
output APP_IDENTITY_RESOURCE_ID string = identity.outputs.id
output DEAD_LETTER_STORAGE_ACCOUNT_ID string = storage.outputs.id
output DEAD_LETTER_CONTAINER_NAME string = storage.outputs.deadLetterContainerName
output DELIVERY_REPORT_INGEST_PATH string = ingestPath
output DELIVERY_REPORT_MAX_EVENTS_PER_BATCH int = maxEventsPerBatch
// The custom topic of status-change events: subscribe to it with `az eventgrid event-subscription
// create --source-resource-id <this>` (docs/api.md, "Status-change events").
output STATUS_EVENTS_TOPIC_ID string = statusTopic.outputs.id
output STATUS_EVENTS_ENDPOINT string = statusTopic.outputs.endpoint
