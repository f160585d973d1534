// Role assignments, in one place: what the app's identity (and the deploying user) may do.
param identityPrincipalId string
param storageAccountName string
param applicationInsightsName string
param acsResourceId string
param statusTopicName string
param deployerPrincipalId string
@allowed(['User', 'ServicePrincipal', 'Group'])
param deployerPrincipalType string = 'User'

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // ACS data-plane calls with Entra ID (the SMS/MMS send) are authorised by a role on the ACS
  // resource; Microsoft's Entra ID quickstart for ACS SMS grants Contributor, scoped here to ACS alone.
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c'
  // "EventGrid Data Sender: Allows send access to event grid events." (Azure built-in roles,
  // MicrosoftDocs azure-docs, articles/role-based-access-control/built-in-roles.md, Integration).
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource statusTopic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: statusTopicName
}

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: last(split(acsResourceId, '/'))
  scope: resourceGroup(split(acsResourceId, '/')[2], split(acsResourceId, '/')[4])
}

// Blob: the host's AzureWebJobsStorage, the deployment package, Event Grid dead letters, campaign
// attachments (Owner includes Storage Blob Data Contributor's data actions).
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

// Queue: the Functions host uses queues internally (for example for timer and blob bookkeeping), the
// campaign queue trigger reads and deletes its messages, and the app enqueues chunks and poison.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// Table: the tracking tables.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// Status-change events: the app publishes to its custom topic with its identity (no access key).
resource statusEventsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(statusTopic.id, identityPrincipalId, roles.eventGridDataSender)
  scope: statusTopic
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
  }
}

module acsSender 'acs-role.bicep' = {
  name: 'acs-sender-role'
  scope: resourceGroup(split(acsResourceId, '/')[2], split(acsResourceId, '/')[4])
  params: {
    acsName: acs.name
    principalId: identityPrincipalId
    roleDefinitionId: roles.contributor
  }
}

resource deployerTableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage.id, deployerPrincipalId, roles.storageTableDataReader)
  scope: storage
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataReader)
  }
}
