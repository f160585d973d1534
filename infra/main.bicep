// mms-tracker on Azure: a Flex Consumption Function App with a user-assigned identity, storage
// without shared keys, Application Insights without local auth, an ACS resource (or an existing
// one), and, once the code is deployed, the Event Grid subscription to on_delivery_report.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of the resource group and its resources (Flex Consumption must be available there).')
param location string

@description('Resource id of an existing ACS resource to use instead of creating one.')
param existingAcsResourceId string = ''

@description('Where a new ACS resource keeps its data.')
param acsDataLocation string = 'United States'

@description('Comma-separated E.164 numbers the app may send from (numbers bought on the ACS resource).')
param mmsSenders string

@description('Create the Event Grid subscription to on_delivery_report; true only after the code is deployed (the azd postdeploy hook does this).')
param deployEventSubscription bool = false

@description('How delivery reports reach the app: trigger (one event per invocation) or batchedWebhook (POST /api/events/delivery-reports with batches).')
@allowed(['trigger', 'batchedWebhook'])
param ingestPath string = 'trigger'

@description('Events per request on the batchedWebhook path (Event Grid allows up to 5000).')
param maxEventsPerBatch int = 100

@description('Hours without a final delivery report before a message is Expired.')
param expiryWindowHours int = 72

@secure()
@description('Key sealing listing continuation tokens; a new one (the default) invalidates outstanding tokens.')
// checkov:skip=CKV_AZURE_131: the default is newGuid(), generated per deployment, not a hard-coded value
param queryTokenKey string = newGuid()

@description('Principal id of the deploying user (azd sets it), granted read access to the tracking tables.')
param principalId string = ''

var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var tablePrefix = 'mms'

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

module acs 'app/acs.bicep' = {
  scope: rg
  name: 'acs'
  params: {
    name: 'acs-${token}'
    dataLocation: acsDataLocation
    existingResourceId: existingAcsResourceId
    tags: tags
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
    queryTokenKey: queryTokenKey
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
    deployerPrincipalId: principalId
  }
}

module eventSubscription 'app/event-subscription.bicep' = if (deployEventSubscription) {
  scope: rg
  name: 'event-subscription'
  params: {
    systemTopicName: 'egst-${token}'
    acsResourceId: acs.outputs.id
    functionAppId: functionApp.outputs.id
    functionAppName: functionApp.outputs.name
    functionName: 'on_delivery_report'
    ingestPath: ingestPath
    maxEventsPerBatch: maxEventsPerBatch
    identityId: identity.outputs.id
    storageAccountId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    tags: tags
  }
  dependsOn: [rbac]
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output ACS_ENDPOINT string = acs.outputs.endpoint
output TRACKING_STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
