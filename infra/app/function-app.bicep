// The Function App on the Flex Consumption plan, Python 3.11, running as the user-assigned identity.
// AzureWebJobsStorage, the deployment package, the tables, ACS and Application Insights are all reached
// with that identity: no connection string or key is set anywhere.
param planName string
param appName string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param tableEndpoint string
param applicationInsightsConnectionString string
param acsEndpoint string
param mmsSenders string
param tablePrefix string
param expiryWindowHours int
@description('Event Grid custom topic endpoint the app publishes status-change events to (with its identity).')
param statusEventsEndpoint string
param maximumInstanceCount int = 100
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption exists only in some regions; set zoneRedundant where yours has it
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the API serves clients and Event Grid on the public endpoint; every route but health and openapi needs a function key
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys; Event Grid cannot present a client certificate
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero by design; add alwaysReady instances if cold starts matter
  // checkov:skip=CKV_AZURE_213: the platform health-check probe is not offered on Flex Consumption; point monitors at /api/health
  // checkov:skip=CKV_AZURE_78: Flex Consumption does not support FTPS and deprecates siteConfig.ftpsState (Learn: functions-app-settings, "Flex Consumption plan deprecations")
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: storageAccountName }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsightsConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        // HTTP streams (the CSV export): the worker serves the routes through the FastAPI extension
        { name: 'PYTHON_ENABLE_INIT_INDEXING', value: '1' }
        { name: 'ACS_ENDPOINT', value: acsEndpoint }
        { name: 'MMS_SENDERS', value: mmsSenders }
        { name: 'TRACKING_STORAGE_TABLE_ENDPOINT', value: tableEndpoint }
        { name: 'TRACKING_TABLE_PREFIX', value: tablePrefix }
        { name: 'EXPIRY_WINDOW_HOURS', value: string(expiryWindowHours) }
        // Tuning knobs, at the app's defaults (docs/settings.md):
        { name: 'TRACKING_STORAGE_TIMEOUT_SECONDS', value: '10' }
        { name: 'MMS_MAX_REQUEST_BYTES', value: '2097152' }
        { name: 'MMS_MAX_ATTACHMENT_BYTES', value: '1048576' }
        { name: 'ACS_TIMEOUT_SECONDS', value: '20' }
        { name: 'ACS_MAX_ATTEMPTS', value: '4' }
        { name: 'ACS_RETRY_MAX_SECONDS', value: '30' }
        { name: 'RETENTION_DAYS', value: '90' }
        { name: 'REPORT_MAX_FUTURE_SKEW_SECONDS', value: '300' }
        { name: 'CAMPAIGN_SENDS_PER_SECOND', value: '10' }
        { name: 'CAMPAIGN_MAX_REQUEST_BYTES', value: '8388608' }
        { name: 'SEND_RECONCILE_AFTER_SECONDS', value: '60' }
        { name: 'STATUS_EVENTS_ENDPOINT', value: statusEventsEndpoint }
        { name: 'STATUS_EVENTS_RETRY_WINDOW_MINUTES', value: '60' }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output id string = app.id
output name string = app.name
output url string = 'https://${app.properties.defaultHostName}'
