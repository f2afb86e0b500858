data "azurerm_client_config" "current" {}

data "azurerm_subscription" "current" {}

locals {
  # Storage account and Function App names are global: a stable suffix keeps them unique.
  suffix  = substr(md5("${data.azurerm_client_config.current.subscription_id}/${var.resource_group_name}/${var.name}"), 0, 6)
  compact = substr(replace(var.name, "-", ""), 0, 12)

  notify_eventgrid_key = var.notify_eventgrid_key_secret_id != "" ? "@Microsoft.KeyVault(SecretUri=${var.notify_eventgrid_key_secret_id})" : var.notify_eventgrid_key

  # Every setting of shared/settings.py's CATALOGUE, in its order (tests/unit/test_infra.py holds
  # the two equal). AzureWebJobsStorage is not listed: the Flex Consumption resource writes it as a
  # connection string from storage_access_key (with DEPLOYMENT_STORAGE_CONNECTION_STRING, the same
  # value), which is what the ledger (TableServiceClient.from_connection_string) and the queue
  # bindings read. Nothing Flex Consumption rejects is listed either: the runtime (no
  # FUNCTIONS_WORKER_RUNTIME, no FUNCTIONS_EXTENSION_VERSION) and the package (no
  # WEBSITE_RUN_FROM_PACKAGE, no content share) are arguments of the resource below.
  app_settings = {
    AUTOPILOT_MODE                 = var.autopilot_mode
    ALLOWED_WORKSPACES             = join(",", [for w in values(var.workspaces) : w.id])
    ALLOWED_SCOPES                 = var.allowed_scopes
    DISCOVERY_TAG                  = var.discovery_tag
    DISCOVERY_REFRESH_MINUTES      = tostring(var.discovery_refresh_minutes)
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
    ARM_BUDGET_PERCENT             = tostring(var.arm_budget_percent)
  }
}

# The Function App's own storage: timer leases, host keys, the work queue, the ledger table, the
# deployment package and the Event Grid dead-letter container.
resource "azurerm_storage_account" "func" {
  name                     = "st${local.compact}${local.suffix}"
  resource_group_name      = var.resource_group_name
  location                 = var.location
  account_tier             = "Standard"
  account_replication_type = "LRS"
  min_tls_version          = "TLS1_2"

  # The ledger reads AzureWebJobsStorage as a connection string (shared/ledger.py) and the Flex
  # resource writes that setting from the account key: shared keys stay on here.
  shared_access_key_enabled       = true
  allow_nested_items_to_be_public = false
  tags                            = var.tags

  # Deleted blobs (packages, host keys, dead letters) and containers stay recoverable for a week.
  blob_properties {
    delete_retention_policy {
      days = 7
    }

    container_delete_retention_policy {
      days = 7
    }
  }

  # No part of the app issues SAS; any account SAS valid for more than a day is logged.
  sas_policy {
    expiration_period = "01.00:00:00"
  }
}

# Flex Consumption runs the package found in this container; deploying the code uploads it here.
resource "azurerm_storage_container" "deployment" {
  name                  = "app-package"
  storage_account_id    = azurerm_storage_account.func.id
  container_access_type = "private"
}

resource "azurerm_service_plan" "func" {
  name                = "asp-${var.name}"
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = var.tags
}

resource "azurerm_function_app_flex_consumption" "this" {
  name                = "func-${var.name}-${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  service_plan_id     = azurerm_service_plan.func.id

  # The package: a blob container of the app's storage, reached with the account key. The same key
  # makes AzureWebJobsStorage (a connection string, see app_settings above).
  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.func.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
  storage_authentication_type = "StorageAccountConnectionString"
  storage_access_key          = azurerm_storage_account.func.primary_access_key

  runtime_name           = "python"
  runtime_version        = "3.11"
  instance_memory_in_mb  = var.instance_memory_in_mb
  maximum_instance_count = var.maximum_instance_count

  app_settings = local.app_settings
  tags         = var.tags

  # Deploying the code authenticates with Microsoft Entra ID: no publishing profile, no basic auth.
  https_only                                     = true
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = var.application_insights_connection_string
    minimum_tls_version                    = "1.2"
  }

  lifecycle {
    ignore_changes = [
      # Added by the portal when it links the app to Application Insights.
      tags["hidden-link: /app-insights-resource-id"],
    ]

    precondition {
      condition     = length(var.workspaces) > 0 || trimspace(var.allowed_scopes) != ""
      error_message = "ALLOWED_WORKSPACES: at least one workspace is required, unless allowed_scopes names where to discover them."
    }
  }
}

# Host keys exist once the host has started, i.e. after the code is deployed.
data "azurerm_function_app_host_keys" "this" {
  count               = var.connect_triggers ? 1 : 0
  name                = azurerm_function_app_flex_consumption.this.name
  resource_group_name = var.resource_group_name
}

locals {
  # functions/alerts.py: route "alerts", function auth level. The default function key is a host
  # key valid for every function-level function of the app.
  alerts_webhook_url = var.connect_triggers ? "https://${azurerm_function_app_flex_consumption.this.default_hostname}/api/alerts?code=${data.azurerm_function_app_host_keys.this[0].default_function_key}" : ""

  # functions/events.py: the Event Grid trigger is the function named on_event.
  on_event_function_id = "${azurerm_function_app_flex_consumption.this.id}/functions/on_event"
}
