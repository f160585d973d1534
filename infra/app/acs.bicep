// The ACS resource the app sends through: always an existing one, by resource id, in a resource group of
// its own. The template never creates it, so `azd down` (which deletes rg-<env>) cannot delete it and the
// phone numbers bought on it (docs/deploy.md, "What azd down deletes"). The app reaches it with Entra ID (ACS_ENDPOINT).
param resourceId string

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: last(split(resourceId, '/'))
  scope: resourceGroup(split(resourceId, '/')[2], split(resourceId, '/')[4])
}

output id string = acs.id
output endpoint string = 'https://${acs.properties.hostName}'
