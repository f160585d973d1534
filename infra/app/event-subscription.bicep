// The Event Grid system topic on the ACS resource and the subscription that delivers delivery reports
// to the on_delivery_report function. Deployed only once the code is deployed (the function must exist).
param systemTopicName string
param acsResourceId string
param functionAppId string
param functionName string
param identityId string
param storageAccountId string
param deadLetterContainerName string
param tags object

@description('trigger: the on_delivery_report Event Grid trigger, one event per invocation. batchedWebhook: POST /api/events/delivery-reports, up to maxEventsPerBatch events per request.')
@allowed(['trigger', 'batchedWebhook'])
param ingestPath string = 'trigger'

@minValue(1)
@maxValue(5000)
param maxEventsPerBatch int = 100

param functionAppName string

// The event types on_delivery_report accepts that ACS publishes today (MMS reports arrive as SMS ones).
var deliveryReportEventTypes = [
  'Microsoft.Communication.SMSDeliveryReportReceived'
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource topic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: systemTopicName
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

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: topic
  name: 'mms-delivery-reports'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: ingestPath == 'trigger' ? {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    } : {
      endpointType: 'WebHook'
      properties: {
        // The function key travels in the URL, as Event Grid webhooks to function-level routes require;
        // Event Grid stores endpointUrl write-only.
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/api/events/delivery-reports?code=${listKeys('${functionAppId}/host/default', '2023-12-01').functionKeys.default}'
        maxEventsPerBatch: maxEventsPerBatch
        preferredBatchSizeInKilobytes: 1024
      }
    }
    filter: {
      includedEventTypes: deliveryReportEventTypes
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: identityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output subscriptionId string = subscription.id
