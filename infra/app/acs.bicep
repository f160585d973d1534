// An ACS resource, or an existing one by resource id. The app reaches it with Entra ID (ACS_ENDPOINT).
param name string
param dataLocation string
param existingResourceId string
param tags object

var useExisting = !empty(existingResourceId)

resource created 'Microsoft.Communication/communicationServices@2023-04-01' = if (!useExisting) {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource existing 'Microsoft.Communication/communicationServices@2023-04-01' existing = if (useExisting) {
  name: last(split(existingResourceId, '/'))
  scope: resourceGroup(split(existingResourceId, '/')[2], split(existingResourceId, '/')[4])
}

output id string = useExisting ? existing.id : created.id
output endpoint string = 'https://${useExisting ? existing.properties.hostName : created.properties.hostName}'
