# Observable from day one: resource logs to Log Analytics, a workbook over the app's outcomes, and
# alerts on the app's own failures (exceptions, poison messages, dead-lettered events).
#
# The outcomes arrive in Application Insights as custom events named AutopilotOutcome with the
# dimensions kind, workspace, target, outcome, mode, trigger and (when known) cores_freed, and as the
# metric autopilot.outcomes (shared/telemetry.py). The queries below read those names.

locals {
  outcome_event = "AutopilotOutcome"
  poison_queue  = "${var.work_queue}-poison"

  # Workbook items (the "Notebook/1.0" format of azurerm_application_insights_workbook's data_json).
  workbook_queries = [
    {
      title         = "Actions over time, by kind and outcome"
      visualization = "timechart"
      query         = <<-KQL
        customEvents
        | where name == "${local.outcome_event}"
        | extend kind = tostring(customDimensions.kind), outcome = tostring(customDimensions.outcome)
        | summarize actions = count() by series = strcat(kind, " ", outcome), bin(timestamp, 1h)
        | render timechart
      KQL
    },
    {
      title         = "Rejected and forged deliveries"
      visualization = "timechart"
      query         = <<-KQL
        traces
        | where message startswith "security: rejected" or message startswith "rejected"
        | extend why = iff(message startswith "security:", "forged source", "malformed")
        | summarize deliveries = count() by why, bin(timestamp, 1h)
        | render timechart
      KQL
    },
    {
      title         = "Errors"
      visualization = "table"
      query         = <<-KQL
        union
          (exceptions | project timestamp, operation_Name, what = type, detail = outerMessage),
          (traces | where severityLevel >= 3 | project timestamp, operation_Name, what = "error log", detail = message)
        | top 100 by timestamp desc
      KQL
    },
    {
      title         = "Last outcomes"
      visualization = "table"
      query         = <<-KQL
        customEvents
        | where name == "${local.outcome_event}"
        | project timestamp, kind = tostring(customDimensions.kind), workspace = tostring(customDimensions.workspace),
                  target = tostring(customDimensions.target), outcome = tostring(customDimensions.outcome),
                  mode = tostring(customDimensions.mode), cores_freed = tostring(customDimensions.cores_freed),
                  trigger = tostring(customDimensions.trigger)
        | top 50 by timestamp desc
      KQL
    },
  ]
}

# --- Resource logs -------------------------------------------------------------------------------

resource "azurerm_monitor_diagnostic_setting" "function_app" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_function_app_flex_consumption.this.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category = "FunctionAppLogs"
  }

  enabled_metric {
    category = "AllMetrics"
  }
}

# Storage logs are per service: reads, writes and deletes of the ledger (table), the work and
# poison queues (queue), the host's blobs and the dead letters (blob). The poison and dead-letter
# alerts below read them. A log's ObjectKey is "/<account>/<queue or container>/..." (a message put
# is "/<account>/<queue>/messages"), so the alerts compare its second segment, exactly.
resource "azurerm_monitor_diagnostic_setting" "func_storage" {
  for_each                   = toset(["blobServices", "queueServices", "tableServices"])
  name                       = "to-log-analytics"
  target_resource_id         = "${azurerm_storage_account.func.id}/${each.key}/default"
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category = "StorageRead"
  }

  enabled_log {
    category = "StorageWrite"
  }

  enabled_log {
    category = "StorageDelete"
  }

  enabled_metric {
    category = "Transaction"
  }
}

# --- Workbook ------------------------------------------------------------------------------------

resource "azurerm_application_insights_workbook" "autopilot" {
  # A workbook's name is a UUID; a name-based one keeps it stable across applies.
  name                = uuidv5("url", "${var.app_insights_id}/workbooks/aml-autopilot-${var.name}")
  resource_group_name = var.resource_group_name
  location            = var.location
  display_name        = "AML autopilot (${var.name})"
  source_id           = lower(var.app_insights_id)
  category            = "workbook"
  tags                = var.tags

  data_json = jsonencode({
    version             = "Notebook/1.0"
    fallbackResourceIds = [var.app_insights_id]
    items = [for i, q in local.workbook_queries : {
      type = 3
      name = "query-${i}"
      content = {
        version       = "KqlItem/1.0"
        title         = q.title
        query         = q.query
        size          = 0
        timeContext   = { durationMs = 604800000 }
        queryType     = 0
        resourceType  = "microsoft.insights/components"
        visualization = q.visualization
      }
    }]
  })
}

# --- Alerts on the autopilot itself --------------------------------------------------------------

resource "azurerm_monitor_action_group" "operators" {
  name                = "ag-${var.name}-operators"
  resource_group_name = var.resource_group_name
  short_name          = substr("ops-${replace(var.name, "-", "")}", 0, 12)
  tags                = var.tags

  dynamic "email_receiver" {
    for_each = var.alert_email != "" ? [var.alert_email] : []
    content {
      name                    = "operators"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "exceptions" {
  name                    = "autopilot-${var.name}-exceptions"
  resource_group_name     = var.resource_group_name
  location                = var.location
  scopes                  = [var.app_insights_id]
  description             = "The autopilot raised exceptions: a trigger failed (Azure throttling or outage, a missing role, a bug)."
  severity                = 2
  evaluation_frequency    = "PT5M"
  window_duration         = "PT15M"
  auto_mitigation_enabled = true
  tags                    = var.tags

  criteria {
    query                   = "exceptions | where cloud_RoleName =~ \"${azurerm_function_app_flex_consumption.this.name}\""
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0
  }

  action {
    action_groups = [azurerm_monitor_action_group.operators.id]
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "poison" {
  name                    = "autopilot-${var.name}-poison-queue"
  resource_group_name     = var.resource_group_name
  location                = var.location
  scopes                  = [var.log_analytics_workspace_id]
  description             = "Work items landed in ${local.poison_queue}: the worker gave up on them (permanent failures, or five failed attempts). Read them, fix the cause, and move them back."
  severity                = 2
  evaluation_frequency    = "PT5M"
  window_duration         = "PT15M"
  auto_mitigation_enabled = false
  tags                    = var.tags

  criteria {
    query                   = <<-KQL
      union isfuzzy=true StorageQueueLogs, (datatable(TimeGenerated: datetime, AccountName: string, OperationName: string, ObjectKey: string)[])
      | where AccountName =~ "${azurerm_storage_account.func.name}" and OperationName == "PutMessage"
      | where tostring(split(ObjectKey, "/")[2]) == "${local.poison_queue}"
    KQL
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0
  }

  action {
    action_groups = [azurerm_monitor_action_group.operators.id]
  }

  # A new Log Analytics workspace has no StorageQueueLogs or StorageBlobLogs table until the first
  # logs arrive, and Azure validates a rule's query when the rule is created: the fuzzy union with an
  # empty datatable of the same columns always resolves, so the first apply does not fail on it.
  skip_query_validation = true

  depends_on = [azurerm_monitor_diagnostic_setting.func_storage]
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "dead_letters" {
  name                    = "autopilot-${var.name}-dead-letters"
  resource_group_name     = var.resource_group_name
  location                = var.location
  scopes                  = [var.log_analytics_workspace_id]
  description             = "Event Grid dead-lettered events into ${local.dead_letter_container}: deliveries to on_event failed for the whole retry policy."
  severity                = 2
  evaluation_frequency    = "PT5M"
  window_duration         = "PT15M"
  auto_mitigation_enabled = false
  tags                    = var.tags

  criteria {
    query                   = <<-KQL
      union isfuzzy=true StorageBlobLogs, (datatable(TimeGenerated: datetime, AccountName: string, OperationName: string, ObjectKey: string)[])
      | where AccountName =~ "${azurerm_storage_account.func.name}" and OperationName in ("PutBlob", "PutBlockList", "AppendBlock")
      | where tostring(split(ObjectKey, "/")[2]) == "${local.dead_letter_container}"
    KQL
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0
  }

  action {
    action_groups = [azurerm_monitor_action_group.operators.id]
  }

  # A new Log Analytics workspace has no StorageQueueLogs or StorageBlobLogs table until the first
  # logs arrive, and Azure validates a rule's query when the rule is created: the fuzzy union with an
  # empty datatable of the same columns always resolves, so the first apply does not fail on it.
  skip_query_validation = true

  depends_on = [azurerm_monitor_diagnostic_setting.func_storage]
}
