// The Event Grid custom topic the app publishes status-change events to (CloudEvents 1.0 input,
// access keys off: the app's identity publishes as EventGrid Data Sender, granted in rbac.bicep).
// Users subscribe their webhooks, queues or functions to it (docs/api.md, "Status-change events").
param name string
param location string
param tags object
param identityId string

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: the Flex Consumption app publishes over the public endpoint (no virtual network here); local auth is off, so only Entra ID identities with EventGrid Data Sender can publish
  name: name
  location: location
  tags: tags
  // Subscriptions can deliver and dead-letter with this identity (as the system topic's do).
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

output id string = topic.id
output name string = topic.name
output endpoint string = topic.properties.endpoint
