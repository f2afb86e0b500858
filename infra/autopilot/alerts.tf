# Node failures, quota pressure, failed model deployments, not-responding and failed runs are Azure
# Monitor metric alerts (the five baseline alerts Azure Monitor Baseline Alerts gives a workspace),
# delivered by an action group to the alerts HTTP function in the common alert schema.

resource "azurerm_monitor_action_group" "autopilot" {
  count               = var.connect_triggers ? 1 : 0
  name                = "ag-${var.name}"
  resource_group_name = var.resource_group_name
  short_name          = substr("ap-${replace(var.name, "-", "")}", 0, 12)
  tags                = var.tags

  webhook_receiver {
    name                    = "autopilot-alerts"
    service_uri             = local.alerts_webhook_url
    use_common_alert_schema = true
  }
}

# The five alerts differ only in their metric, aggregation, window, threshold and split: one table,
# one resource. Each key is also the alert name's middle part.
locals {
  baseline_alerts = {
    unusable-nodes = {
      metric      = "Unusable Nodes"
      aggregation = "Average"
      window      = "PT15M"
      threshold   = 0
      dimensions  = ["ClusterName"]
      description = "A cluster of this workspace has unusable nodes: the autopilot inspects and relieves it."
    }
    quota = {
      metric      = "Quota Utilization Percentage"
      aggregation = "Average"
      window      = "PT15M"
      threshold   = var.quota_alert_threshold_percent
      dimensions  = ["VmFamilyName", "ClusterName"]
      description = "A VM family's quota is above ${var.quota_alert_threshold_percent}% for a cluster of this workspace: the autopilot frees cores."
    }
    model-deploy-failed = {
      metric      = "Model Deploy Failed"
      aggregation = "Total"
      window      = "PT5M"
      threshold   = var.model_deploy_failed_alert_threshold
      dimensions  = ["Scenario", "StatusCode"]
      description = "A model deployment of this workspace failed: the autopilot says why, and releases the quota of a failed deployment nobody is served by."
    }
    not-responding-runs = {
      metric      = "Not Responding Runs"
      aggregation = "Total"
      window      = "PT5M"
      threshold   = var.not_responding_runs_alert_threshold
      dimensions  = []
      description = "A run of this workspace stopped responding: the autopilot tells its owner (and cancels it only when opted in)."
    }
    failed-runs = {
      metric      = "Failed Runs"
      aggregation = "Total"
      window      = "PT5M"
      threshold   = var.failed_runs_alert_threshold
      dimensions  = []
      description = "Runs of this workspace failed: the autopilot checks the clusters they held."
    }
  }

  # One alert per workspace and baseline metric, keyed "<alert>-<workspace key>".
  workspace_alerts = var.connect_triggers ? {
    for pair in setproduct(keys(local.baseline_alerts), keys(var.workspaces)) :
    "${pair[0]}-${pair[1]}" => merge(local.baseline_alerts[pair[0]], { workspace_id = var.workspaces[pair[1]].id })
  } : {}
}

resource "azurerm_monitor_metric_alert" "baseline" {
  for_each            = local.workspace_alerts
  name                = "autopilot-${var.name}-${each.key}"
  resource_group_name = var.resource_group_name
  scopes              = [each.value.workspace_id]
  description         = each.value.description
  severity            = var.alert_severity
  frequency           = "PT5M"
  window_size         = each.value.window
  auto_mitigate       = true
  tags                = var.tags

  criteria {
    metric_namespace = "Microsoft.MachineLearningServices/workspaces"
    metric_name      = each.value.metric
    aggregation      = each.value.aggregation
    operator         = "GreaterThan"
    threshold        = each.value.threshold

    dynamic "dimension" {
      for_each = each.value.dimensions
      content {
        name     = dimension.value
        operator = "Include"
        values   = ["*"]
      }
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.autopilot[0].id
  }
}
