// Log alerts on the app's own OpenTelemetry metrics in Application Insights (docs/operations.md).
// The metrics land in the customMetrics table, their attributes in customDimensions; a counter's
// increase over the window is sum(valueSum), a histogram's mean is sum(valueSum) / sum(valueCount).
// Schema: Microsoft.Insights/scheduledQueryRules@2023-12-01 (Azure/bicep-types-az,
// generated/monitor/microsoft.insights/2023-12-01/types.md). No action group is attached: add yours
// to `actions.actionGroups` to be notified; the fired alerts show in the portal either way.
param applicationInsightsName string
param location string
param tags object
@description('Alert when more than this percentage of the final delivery reports recorded in 15 minutes say Failed (at least 20 reports).')
param failurePercentThreshold int = 20
@description('Alert when delivery reports reach the app this many seconds after ACS received them, on average over 15 minutes.')
param ingestLagSecondsThreshold int = 300

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var rules = [
  {
    name: 'mms-failure-rate'
    displayName: 'mms-tracker: delivery failure rate'
    description: 'More than ${failurePercentThreshold}% of the delivery reports applied in the window said Failed. Split by tag in the docs/operations.md query to see which campaign.'
    severity: 2
    query: 'customMetrics | where name == "mms.reports" and tostring(customDimensions["mms.outcome"]) == "applied" | summarize failed = sumif(valueSum, tostring(customDimensions["mms.delivery_status"]) =~ "Failed"), total = sum(valueSum) | where total >= 20 | extend failurePercent = 100.0 * failed / total'
    column: 'failurePercent'
    aggregation: 'Maximum'
    threshold: failurePercentThreshold
    dimensions: []
  }
  {
    name: 'mms-poison-events'
    displayName: 'mms-tracker: poison events'
    description: 'Delivery-report events that can never be processed were kept in the poison table (GET /api/poison), by reason.'
    severity: 2
    query: 'customMetrics | where name == "mms.poison" | summarize poison = sum(valueSum) by reason = tostring(customDimensions["mms.reason"])'
    column: 'poison'
    aggregation: 'Total'
    threshold: 0
    dimensions: [ { name: 'reason', operator: 'Include', values: [ '*' ] } ]
  }
  {
    name: 'mms-ingest-lag'
    displayName: 'mms-tracker: delivery report ingest lag'
    description: 'Delivery reports are recorded on average more than ${ingestLagSecondsThreshold} s after ACS received them: Event Grid is redelivering, or ingest is failing or slow.'
    severity: 3
    query: 'customMetrics | where name == "mms.ingest.lag" | summarize lagSeconds = sum(valueSum) / sum(valueCount)'
    column: 'lagSeconds'
    aggregation: 'Average'
    threshold: ingestLagSecondsThreshold
    dimensions: []
  }
]

resource alerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${rule.name}-${applicationInsightsName}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [ insights.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: rule.query
          metricMeasureColumn: rule.column
          timeAggregation: rule.aggregation
          operator: 'GreaterThan'
          threshold: rule.threshold
          dimensions: rule.dimensions
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
  }
}]

output alertRuleNames array = [for (rule, i) in rules: alerts[i].name]
