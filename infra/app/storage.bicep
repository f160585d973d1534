// Storage for the Functions host, the deployment package, the tracking tables and Event Grid dead letters.
// Shared keys are off: everything authenticates with Entra ID.
param name string
param location string
param tags object
param tablePrefix string
param deploymentContainerName string
param deadLetterContainerName string

// The app's tables (mms_tracker/adapters/tables/base.py TABLES; V2: the storage layout's version),
// then the campaigns' own (mms_tracker/adapters/campaigns.py CAMPAIGN_TABLE).
var tableNames = ['RecordsV2', 'IdsV2', 'Due', 'Poison', 'Requests', 'Intents', 'Tags', 'Campaigns']

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: no VNet in this template; the Flex app and Event Grid reach storage over the public endpoint, Entra ID only (shared keys off)
  // checkov:skip=CKV_AZURE_59: same reason: the public endpoint stays on, but no anonymous or key access is possible
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_GRS' }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deadLetterContainerName
  properties: { publicAccess: 'None' }
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

// The campaign worker's queue (its queue trigger) and the poison queue the host moves failed chunks to.
resource campaignQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in ['campaign-chunks', 'campaign-chunks-poison']: {
  parent: queues
  name: queue
}]

// Each campaign's attachments, stored once (mms_tracker/adapters/campaigns.py CAMPAIGN_CONTAINER).
resource campaignContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'campaigns'
  properties: { publicAccess: 'None' }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in tableNames: {
  parent: tableService
  name: '${tablePrefix}${table}'
}]

output id string = account.id
output name string = account.name
output tableEndpoint string = account.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
output deadLetterContainerName string = deadLetterContainer.name
