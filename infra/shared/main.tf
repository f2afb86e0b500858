# What a fleet shares: one resource group, one place for telemetry and one Key Vault. The autopilot
# writes its structured outcome lines here, operators query them next to the workspaces' own logs,
# and the ML workspaces keep their secrets (datastore credentials among them) in the vault.

data "azurerm_client_config" "current" {}

locals {
  # Vault names are global: a stable suffix keeps them unique per subscription.
  suffix  = substr(md5("${data.azurerm_client_config.current.subscription_id}/${azurerm_resource_group.this.name}/${var.name}"), 0, 6)
  compact = substr(replace(var.name, "-", ""), 0, 12)
}

resource "azurerm_resource_group" "this" {
  name     = var.resource_group_name != "" ? var.resource_group_name : "rg-${var.name}"
  location = var.location
  tags     = var.tags
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "log-${var.name}"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_application_insights" "this" {
  name                = "appi-${var.name}"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  workspace_id        = azurerm_log_analytics_workspace.this.id
  application_type    = "web"
  retention_in_days   = var.log_retention_days
  tags                = var.tags

  # Telemetry is accepted only with an Entra token (the app's identity is Monitoring Metrics
  # Publisher here): an instrumentation key alone can neither send nor forge it.
  local_authentication_disabled = true
}

# RBAC authorization (no access policies): the autopilot's identity gets a custom data-action role
# on it, nothing broader. Purge protection is on: a deleted secret (a rotated credential among
# them) stays recoverable for the retention period, and nobody can purge it before then.
resource "azurerm_key_vault" "this" {
  name                       = "kv${local.compact}${local.suffix}"
  resource_group_name        = azurerm_resource_group.this.name
  location                   = azurerm_resource_group.this.location
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  soft_delete_retention_days = var.key_vault_retention_days
  purge_protection_enabled   = true
  tags                       = var.tags

  # The Function App has no virtual network, so its outbound addresses are shared and may change:
  # a firewall or a private endpoint would cut off both the platform's resolution of the app's Key
  # Vault references and the rotation itself. Entra RBAC (a three-data-action role) is the gate, and
  # every data-plane call is audited (diagnostic setting below).
  #checkov:skip=CKV_AZURE_109:No virtual network for the app; the vault must answer it over the public endpoint (see above)
  #checkov:skip=CKV_AZURE_189:Public network access stays on for the app without a virtual network (see above)
  #checkov:skip=CKV2_AZURE_32:No virtual network, hence no private endpoint (see above)
}

# Every read and write of the vault's secrets (AuditEvent) to Log Analytics.
resource "azurerm_monitor_diagnostic_setting" "key_vault" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_key_vault.this.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category_group = "audit"
  }

  enabled_metric {
    category = "AllMetrics"
  }
}
