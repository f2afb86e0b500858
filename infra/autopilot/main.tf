data "azurerm_client_config" "current" {}

data "azurerm_subscription" "current" {}

locals {
  # Storage account and Function App names are global: a stable suffix keeps them unique.
  suffix  = substr(md5("${data.azurerm_client_config.current.subscription_id}/${var.resource_group_name}/${var.name}"), 0, 6)
  compact = substr(replace(var.name, "-", ""), 0, 12)

  # Secrets reach the app only as Key Vault references, resolved by the platform with the app's
  # identity (key_vault_reference_identity_id below): the variables hold secret ids, never values.
  notify_webhook_url   = var.notify_webhook_url != "" ? "@Microsoft.KeyVault(SecretUri=${var.notify_webhook_url})" : ""
  notify_eventgrid_key = var.notify_eventgrid_key != "" ? "@Microsoft.KeyVault(SecretUri=${var.notify_eventgrid_key})" : ""

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
    DEPLOYMENT_SWEEP_SCHEDULE       = var.deployment_sweep_schedule
    FAILED_DEPLOYMENT_GRACE_MINUTES = tostring(var.failed_deployment_grace_minutes)
    DEPLOYMENT_LOG_TAIL_LINES       = tostring(var.deployment_log_tail_lines)
    MOVE_TRAFFIC_FROM_FAILED        = var.move_traffic_from_failed
    NOT_RESPONDING_CANCEL_MINUTES   = tostring(var.not_responding_cancel_minutes)
    ROTATION_SCHEDULE              = var.rotation_schedule
    ROTATION_NEAR_EXPIRY_DAYS      = tostring(var.rotation_near_expiry_days)
    ROTATION_MIN_INTERVAL_HOURS    = tostring(var.rotation_min_interval_hours)
    JOBS_SOURCE                    = var.jobs_source
    JOBS_FULL_LISTING_HOURS        = tostring(var.jobs_full_listing_hours)
    LEDGER_TABLE                   = var.ledger_table
    WORK_QUEUE                     = var.work_queue
    NOTIFY_WEBHOOK_URL             = local.notify_webhook_url
    NOTIFY_EVENTGRID_ENDPOINT      = var.notify_eventgrid_endpoint
    NOTIFY_EVENTGRID_KEY           = local.notify_eventgrid_key
    NOTIFY_FORMAT                  = var.notify_format
    NOTIFY_OWNER_WEBHOOKS          = var.notify_owner_webhooks
    STUDIO_TENANT_ID               = var.studio_tenant_id
    RETAIL_PRICES_ENDPOINT         = var.retail_prices_endpoint
    ARM_TIMEOUT_SECONDS            = tostring(var.arm_timeout_seconds)
    ARM_MAX_RETRIES                = tostring(var.arm_max_retries)
    ARM_BUDGET_PERCENT             = tostring(var.arm_budget_percent)

    # The identity, and only it: the Azure SDK clients use ManagedIdentityCredential with this client
    # id (shared/adapters/azure.py), never the developer-tool chain.
    AZURE_TOKEN_CREDENTIALS = "ManagedIdentityCredential"
    AZURE_CLIENT_ID         = azurerm_user_assigned_identity.app.client_id

    # Identity-based storage for the host (timers, queues, keys) and the ledger: no account key.
    # Empty on purpose: with an identity as storage_authentication_type, azurerm (4.x, issues 29149
    # and 29693 of terraform-provider-azurerm) still writes AzureWebJobsStorage as a connection
    # string with an empty AccountKey, and a non-empty AzureWebJobsStorage wins over the
    # AzureWebJobsStorage__* settings in the host and in the ledger. The user's value replaces the
    # provider's; the provider hides the setting when it reads it back, so every plan shows this
    # line as a change (harmless: it writes the same empty value).
    AzureWebJobsStorage                  = ""
    AzureWebJobsStorage__accountName     = azurerm_storage_account.func.name
    AzureWebJobsStorage__tableServiceUri = azurerm_storage_account.func.primary_table_endpoint
    AzureWebJobsStorage__credential      = "managedidentity"
    AzureWebJobsStorage__clientId        = azurerm_user_assigned_identity.app.client_id

    # Application Insights takes Entra-authenticated telemetry only (local authentication off).
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${azurerm_user_assigned_identity.app.client_id};Authorization=AAD"
  }
}

# The app's one identity. User-assigned, so its roles exist before the app does (no first start
# without permissions) and survive a re-creation of the app.
resource "azurerm_user_assigned_identity" "app" {
  name                = "id-${var.name}-${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
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

  #checkov:skip=CKV_AZURE_206:Leases, keys, the work queue and dead letters of a single-region app: geo-replication would keep copies no running app reads after a regional outage; outcomes are also in Application Insights
  #checkov:skip=CKV_AZURE_43:Name is computed: "st" + up to 12 lowercase letters and digits of var.name (validated) + 6 hex digits, i.e. 9 to 20 lowercase alphanumerics, inside the 3 to 24 rule
  #checkov:skip=CKV_AZURE_59:The Function App has no virtual network (Flex Consumption, public by design here): it reaches its storage over the public endpoint, gated by Entra RBAC with shared keys off
  #checkov:skip=CKV2_AZURE_33:No virtual network, hence no private endpoint (see CKV_AZURE_59)
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys: the account holds leases, a queue of workspace ids and the ledger; a customer-managed key would add a vault key and an identity for no data that needs it
  #checkov:skip=CKV_AZURE_33:Classic Storage Analytics logging is superseded by resource logs: the diagnostic settings func_storage send StorageRead, StorageWrite and StorageDelete of the blob, queue and table services to Log Analytics
  # Every client authenticates with Entra ID (the app's identity, the Flex deployment, Event Grid's
  # dead-lettering through the same identity): no account key is usable.
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true
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

  # Shared keys are off, so no SAS can be signed; the policy stays as a second fence.
  sas_policy {
    expiration_period = "01.00:00:00"
  }
}

# Flex Consumption runs the package found in this container; deploying the code uploads it here.
resource "azurerm_storage_container" "deployment" {
  name                  = "app-package"
  storage_account_id    = azurerm_storage_account.func.id
  container_access_type = "private"

  #checkov:skip=CKV2_AZURE_21:Blob reads and writes are logged by the blob service's diagnostic setting (func_storage in observability.tf), not by the retired Log Analytics storage insights this check looks for
}

resource "azurerm_service_plan" "func" {
  name                = "asp-${var.name}"
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = var.tags

  # Zone redundancy and a minimum instance count do not fit an event-driven app that scales from
  # zero: every trigger is retried by its source (Event Grid for up to 24 hours, the queue five
  # times, timers on their next tick), so a zone outage delays work and loses none.
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales per event from zero and has no worker count; every trigger source retries (see above)
  #checkov:skip=CKV_AZURE_225:Zone redundancy would keep always-ready instances in three zones for an app that may sit at zero; sources retry across an outage (see above)
}

resource "azurerm_function_app_flex_consumption" "this" {
  name                = "func-${var.name}-${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  service_plan_id     = azurerm_service_plan.func.id

  # The package: a blob container of the app's storage, reached with the app's identity.
  storage_container_type            = "blobContainer"
  storage_container_endpoint        = "${azurerm_storage_account.func.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
  storage_authentication_type       = "UserAssignedIdentity"
  storage_user_assigned_identity_id = azurerm_user_assigned_identity.app.id

  runtime_name           = "python"
  runtime_version        = "3.11"
  instance_memory_in_mb  = var.instance_memory_in_mb
  maximum_instance_count = var.maximum_instance_count

  app_settings = local.app_settings
  # azd finds the app it deploys the code to by this tag (service "autopilot" of azure.yaml).
  tags = merge(var.tags, { "azd-service-name" = "autopilot" })

  # Deploying the code authenticates with Microsoft Entra ID: no publishing profile, no basic auth.
  https_only                                     = true
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
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

  # The host reaches its storage (leases, keys, queues, the package) with the identity from its
  # first start: the identity's data roles come first. They depend on the identity and the account
  # only, so this adds no cycle.
  depends_on = [azurerm_role_assignment.func_storage, azurerm_role_assignment.telemetry_publisher]
}

# Key Vault references (NOTIFY_WEBHOOK_URL, NOTIFY_EVENTGRID_KEY) resolve with the user-assigned
# identity only when the site's keyVaultReferenceIdentity names it; without it the platform uses a
# system-assigned identity, which this app does not have. azurerm_function_app_flex_consumption has
# no argument for that property (key_vault_reference_identity_id exists on the Linux and Windows
# function apps only; terraform-provider-azurerm pull request 31439 is still open), so one PATCH of
# the site sets it, as Microsoft Learn's "Use Key Vault references" does with `az rest --method
# PATCH` (WebApps_Update leaves every other property as it is; azurerm's own updates read the site
# first and keep it).
resource "azapi_resource_action" "key_vault_reference_identity" {
  type        = "Microsoft.Web/sites@2024-04-01"
  resource_id = azurerm_function_app_flex_consumption.this.id
  method      = "PATCH"

  body = {
    properties = {
      keyVaultReferenceIdentity = azurerm_user_assigned_identity.app.id
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
