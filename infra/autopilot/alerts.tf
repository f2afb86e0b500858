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

resource "azurerm_monitor_metric_alert" "unusable_nodes" {
  for_each            = var.connect_triggers ? var.workspaces : {}
  name                = "autopilot-${var.name}-unusable-nodes-${each.key}"
  resource_group_name = var.resource_group_name
  scopes              = [each.value.id]
  description         = "A cluster of this workspace has unusable nodes: the autopilot inspects and relieves it."
  severity            = var.alert_severity
  frequency           = "PT5M"
  window_size         = "PT15M"
  auto_mitigate       = true
  tags                = var.tags

  criteria {
    metric_namespace = "Microsoft.MachineLearningServices/workspaces"
    metric_name      = "Unusable Nodes"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = 0

    dimension {
      name     = "ClusterName"
      operator = "Include"
      values   = ["*"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.autopilot[0].id
  }
}

resource "azurerm_monitor_metric_alert" "quota_utilization" {
  for_each            = var.connect_triggers ? var.workspaces : {}
  name                = "autopilot-${var.name}-quota-${each.key}"
  resource_group_name = var.resource_group_name
  scopes              = [each.value.id]
  description         = "A VM family's quota is above ${var.quota_alert_threshold_percent}% for a cluster of this workspace: the autopilot frees cores."
  severity            = var.alert_severity
  frequency           = "PT5M"
  window_size         = "PT15M"
  auto_mitigate       = true
  tags                = var.tags

  criteria {
    metric_namespace = "Microsoft.MachineLearningServices/workspaces"
    metric_name      = "Quota Utilization Percentage"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = var.quota_alert_threshold_percent

    dimension {
      name     = "VmFamilyName"
      operator = "Include"
      values   = ["*"]
    }

    dimension {
      name     = "ClusterName"
      operator = "Include"
      values   = ["*"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.autopilot[0].id
  }
}

resource "azurerm_monitor_metric_alert" "model_deploy_failed" {
  for_each            = var.connect_triggers ? var.workspaces : {}
  name                = "autopilot-${var.name}-model-deploy-failed-${each.key}"
  resource_group_name = var.resource_group_name
  scopes              = [each.value.id]
  description         = "A model deployment of this workspace failed: the autopilot says why, and releases the quota of a failed deployment nobody is served by."
  severity            = var.alert_severity
  frequency           = "PT5M"
  window_size         = "PT5M"
  auto_mitigate       = true
  tags                = var.tags

  criteria {
    metric_namespace = "Microsoft.MachineLearningServices/workspaces"
    metric_name      = "Model Deploy Failed"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = var.model_deploy_failed_alert_threshold

    dimension {
      name     = "Scenario"
      operator = "Include"
      values   = ["*"]
    }

    dimension {
      name     = "StatusCode"
      operator = "Include"
      values   = ["*"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.autopilot[0].id
  }
}

resource "azurerm_monitor_metric_alert" "not_responding_runs" {
  for_each            = var.connect_triggers ? var.workspaces : {}
  name                = "autopilot-${var.name}-not-responding-runs-${each.key}"
  resource_group_name = var.resource_group_name
  scopes              = [each.value.id]
  description         = "A run of this workspace stopped responding: the autopilot tells its owner (and cancels it only when opted in)."
  severity            = var.alert_severity
  frequency           = "PT5M"
  window_size         = "PT5M"
  auto_mitigate       = true
  tags                = var.tags

  criteria {
    metric_namespace = "Microsoft.MachineLearningServices/workspaces"
    metric_name      = "Not Responding Runs"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = var.not_responding_runs_alert_threshold
  }

  action {
    action_group_id = azurerm_monitor_action_group.autopilot[0].id
  }
}

resource "azurerm_monitor_metric_alert" "failed_runs" {
  for_each            = var.connect_triggers ? var.workspaces : {}
  name                = "autopilot-${var.name}-failed-runs-${each.key}"
  resource_group_name = var.resource_group_name
  scopes              = [each.value.id]
  description         = "Runs of this workspace failed: the autopilot checks the clusters they held."
  severity            = var.alert_severity
  frequency           = "PT5M"
  window_size         = "PT5M"
  auto_mitigate       = true
  tags                = var.tags

  criteria {
    metric_namespace = "Microsoft.MachineLearningServices/workspaces"
    metric_name      = "Failed Runs"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = var.failed_runs_alert_threshold
  }

  action {
    action_group_id = azurerm_monitor_action_group.autopilot[0].id
  }
}
