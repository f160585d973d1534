// The Event Grid system topic on the ACS resource, carrying the app's identity so that subscriptions can
// dead-letter with it. The subscription to on_delivery_report is not declared here: it needs the function
// to exist, so azd's postdeploy hook (infra/hooks/) creates it once the code is deployed.
param name string
param acsResourceId string
param identityId string
param tags object

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: 'global'
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    source: acsResourceId
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

output name string = topic.name
