data "azurerm_client_config" "current" {}

data "azurerm_subscription" "current" {}

locals {
  # Storage account and Function App names are global: a stable suffix keeps them unique.
  suffix  = substr(md5("${data.azurerm_client_config.current.subscription_id}/${var.resource_group_name}/${var.name}"), 0, 6)
  compact = substr(replace(var.name, "-", ""), 0, 12)

  notify_eventgrid_key = var.notify_eventgrid_key_secret_id != "" ? "@Microsoft.KeyVault(SecretUri=${var.notify_eventgrid_key_secret_id})" : var.notify_eventgrid_key

  # Every setting of shared/settings.py's CATALOGUE, in its order (tests/unit/test_infra.py holds
  # the two equal). AzureWebJobsStorage is not listed: the Function App resource writes it as a
  # connection string from storage_account_name and storage_account_access_key, which is what the
  # ledger (TableServiceClient.from_connection_string) and the queue bindings read.
  app_settings = {
    AUTOPILOT_MODE                 = var.autopilot_mode
    ALLOWED_WORKSPACES             = join(",", [for w in values(var.workspaces) : w.id])
    ALLOWED_VAULTS                 = join(",", [for v in values(var.vaults) : v.id])
    ARM_ENDPOINT                   = var.arm_endpoint
    ARM_AUDIENCE                   = var.arm_audience
    MONITOR_METRICS_ENDPOINT       = var.monitor_metrics_endpoint
    MONITOR_METRICS_AUDIENCE       = var.monitor_metrics_audience
    KEY_VAULT_URL_TEMPLATE         = var.key_vault_url_template
    IDLE_THRESHOLD_MINUTES         = tostring(var.idle_threshold_minutes)
    IDLE_GRACE_MINUTES             = tostring(var.idle_grace_minutes)
    MIN_UPTIME_MINUTES             = tostring(var.min_uptime_minutes)
    CPU_BUSY_PERCENT               = tostring(var.cpu_busy_percent)
    NO_METRICS_MEANS               = var.no_metrics_means
    EXEMPT_TAG                     = var.exempt_tag
    EXEMPT_NAME_PATTERN            = var.exempt_name_pattern
    IDLE_THRESHOLD_TAG             = var.idle_threshold_tag
    IDLE_SHUTDOWN_MINUTES          = tostring(var.idle_shutdown_minutes)
    CLUSTER_IDLE_MINUTES           = tostring(var.cluster_idle_minutes)
    CLUSTER_MAX_SCALE_DOWN_SECONDS = tostring(var.cluster_max_scale_down_seconds)
    QUOTA_TARGET_PERCENT           = tostring(var.quota_target_percent)
    MAX_ACTIONS_PER_RUN            = tostring(var.max_actions_per_run)
    MAX_ACTIONS_PER_HOUR           = tostring(var.max_actions_per_hour)
    COOLDOWN_MINUTES               = tostring(var.cooldown_minutes)
    IDLE_SWEEP_SCHEDULE            = var.idle_sweep_schedule
    CLUSTER_SWEEP_SCHEDULE         = var.cluster_sweep_schedule
    ROTATION_SCHEDULE              = var.rotation_schedule
    ROTATION_NEAR_EXPIRY_DAYS      = tostring(var.rotation_near_expiry_days)
    ROTATION_MIN_INTERVAL_HOURS    = tostring(var.rotation_min_interval_hours)
    LEDGER_TABLE                   = var.ledger_table
    WORK_QUEUE                     = var.work_queue
    NOTIFY_WEBHOOK_URL             = var.notify_webhook_url
    NOTIFY_EVENTGRID_ENDPOINT      = var.notify_eventgrid_endpoint
    NOTIFY_EVENTGRID_KEY           = local.notify_eventgrid_key
    ARM_TIMEOUT_SECONDS            = tostring(var.arm_timeout_seconds)
    ARM_MAX_RETRIES                = tostring(var.arm_max_retries)
  }
}

# The Function App's own storage: timer leases, host keys, the work queue, the ledger table and
# the Event Grid dead-letter container.
resource "azurerm_storage_account" "func" {
  name                     = "st${local.compact}${local.suffix}"
  resource_group_name      = var.resource_group_name
  location                 = var.location
  account_tier             = "Standard"
  account_replication_type = "LRS"
  min_tls_version          = "TLS1_2"

  # The ledger reads AzureWebJobsStorage as a connection string (shared/ledger.py) and
  # `func azure functionapp publish` hands the package over as a SAS URL: shared keys stay on here.
  shared_access_key_enabled       = true
  allow_nested_items_to_be_public = false
  tags                            = var.tags
}

resource "azurerm_service_plan" "func" {
  name                = "asp-${var.name}"
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = "Y1"
  tags                = var.tags
}

resource "azurerm_linux_function_app" "this" {
  name                        = "func-${var.name}-${local.suffix}"
  resource_group_name         = var.resource_group_name
  location                    = var.location
  service_plan_id             = azurerm_service_plan.func.id
  storage_account_name        = azurerm_storage_account.func.name
  storage_account_access_key  = azurerm_storage_account.func.primary_access_key
  functions_extension_version = "~4"
  https_only                  = true
  builtin_logging_enabled     = false
  app_settings                = local.app_settings
  tags                        = var.tags

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = var.application_insights_connection_string
    minimum_tls_version                    = "1.2"
    ftps_state                             = "Disabled"

    application_stack {
      python_version = "3.11"
    }
  }

  lifecycle {
    ignore_changes = [
      # Set by `func azure functionapp publish`: the package the app runs from.
      app_settings["WEBSITE_RUN_FROM_PACKAGE"],
      # Added by the portal when it links the app to Application Insights.
      tags["hidden-link: /app-insights-resource-id"],
    ]
  }
}

# Host keys exist once the host has started, i.e. after the code is published.
data "azurerm_function_app_host_keys" "this" {
  count               = var.connect_triggers ? 1 : 0
  name                = azurerm_linux_function_app.this.name
  resource_group_name = var.resource_group_name
}

locals {
  # functions/alerts.py: route "alerts", function auth level. The default function key is a host
  # key valid for every function-level function of the app.
  alerts_webhook_url = var.connect_triggers ? "https://${azurerm_linux_function_app.this.default_hostname}/api/alerts?code=${data.azurerm_function_app_host_keys.this[0].default_function_key}" : ""

  # functions/events.py: the Event Grid trigger is the function named on_event.
  on_event_function_id = "${azurerm_linux_function_app.this.id}/functions/on_event"
}
