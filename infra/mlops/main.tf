# A small Azure Machine Learning landing zone to try the autopilot on: the workspace with its
# storage account and container registry, and one CPU cluster that scales to zero. The Key Vault and
# Application Insights come from infra/shared (key_vault_id, app_insights_id). Nothing here is
# needed by the autopilot itself; point it at real workspaces instead by leaving this module out.

data "azurerm_client_config" "current" {}

locals {
  # Storage account and registry names are global: a stable suffix keeps them unique per subscription.
  suffix  = substr(md5("${data.azurerm_client_config.current.subscription_id}/${var.resource_group_name}/${var.name}"), 0, 6)
  compact = substr(replace(var.name, "-", ""), 0, 12)
}

resource "azurerm_storage_account" "ml" {
  name                     = "stml${local.compact}${local.suffix}"
  resource_group_name      = var.resource_group_name
  location                 = var.location
  account_tier             = "Standard"
  account_replication_type = "LRS"
  min_tls_version          = "TLS1_2"

  # A sample to try the autopilot on, public like the sample workspace, with the account key on
  # purpose: the key is what the autopilot rotates.
  #checkov:skip=CKV2_AZURE_40:AML's default datastores authenticate with the account key, and rotating that key is what this sample demonstrates
  #checkov:skip=CKV_AZURE_206:Sample data of a trial workspace: locally redundant storage is enough
  #checkov:skip=CKV_AZURE_43:Name is computed: "stml" + up to 12 lowercase letters and digits of var.name (validated) + 6 hex digits, i.e. 11 to 22 lowercase alphanumerics, inside the 3 to 24 rule
  #checkov:skip=CKV_AZURE_59:The sample workspace is public (no virtual network), so is its default storage; Entra RBAC and the rotated key are the gate
  #checkov:skip=CKV2_AZURE_33:No virtual network in the sample, hence no private endpoint (see CKV_AZURE_59)
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys for sample data; a customer-managed key needs a key, an identity and a policy the sample does not have
  #checkov:skip=CKV_AZURE_33:Classic Storage Analytics logging is superseded by resource logs; the account's logs go wherever the operator's policy sends them (the sample adds no queue)
  # AML's default datastores authenticate with the account key: that key is what the autopilot
  # rotates, so shared keys stay enabled here.
  shared_access_key_enabled       = true
  allow_nested_items_to_be_public = false
  tags                            = var.tags

  # Deleted blobs and containers stay recoverable for a week.
  blob_properties {
    delete_retention_policy {
      days = 7
    }

    container_delete_retention_policy {
      days = 7
    }
  }

  # Account SAS valid for more than a day are logged (the studio's own SAS are short-lived).
  sas_policy {
    expiration_period = "01.00:00:00"
  }
}

# Environment images for jobs. No admin user: the workspace and the cluster pull and push with their
# managed identities ("Use managed identities with Azure Machine Learning").
resource "azurerm_container_registry" "ml" {
  name                = "crml${local.compact}${local.suffix}"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = var.container_registry_sku
  admin_enabled       = false
  tags                = var.tags

  # Basic is what a trial needs. Every check below asks for a Premium-only feature (zone redundancy,
  # dedicated data endpoints, content trust, geo-replication, quarantine, retention of untagged
  # manifests, private networking) or for Defender for Containers, a subscription-wide plan.
  #checkov:skip=CKV_AZURE_233:Zone redundancy is Premium-only; a sample registry is Basic
  #checkov:skip=CKV_AZURE_237:Dedicated data endpoints are Premium-only
  #checkov:skip=CKV_AZURE_164:Content trust (signed images) is Premium-only
  #checkov:skip=CKV_AZURE_165:Geo-replication is Premium-only and a sample lives in one region
  #checkov:skip=CKV_AZURE_166:Quarantine is Premium-only
  #checkov:skip=CKV_AZURE_167:Retention of untagged manifests is Premium-only
  #checkov:skip=CKV_AZURE_139:Disabling public networking needs Premium and private endpoints; the sample workspace is public
  #checkov:skip=CKV_AZURE_163:Image scanning is Microsoft Defender for Containers, enabled per subscription by its owner, not by this module
}

resource "azurerm_machine_learning_workspace" "this" {
  name                          = "mlw-${var.name}"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  application_insights_id       = var.app_insights_id
  key_vault_id                  = var.key_vault_id
  storage_account_id            = azurerm_storage_account.ml.id
  container_registry_id         = azurerm_container_registry.ml.id
  public_network_access_enabled = true
  tags                          = var.tags

  # A sample to try the autopilot on from the studio and a laptop. The autopilot itself only talks
  # to ARM, which a private workspace answers too.
  #checkov:skip=CKV_AZURE_144:Sample workspace, public on purpose (studio access without a virtual network)
  #checkov:skip=CKV2_AZURE_49:Public network access on purpose, as for CKV_AZURE_144 (a sample reached from the studio)
  #checkov:skip=CKV2_AZURE_50:Its default storage is public like the workspace (see the storage account); a trial holds no business data

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_machine_learning_compute_cluster" "cpu" {
  name                          = var.cluster_name
  location                      = var.location
  machine_learning_workspace_id = azurerm_machine_learning_workspace.this.id
  vm_priority                   = "Dedicated"
  vm_size                       = var.cluster_vm_size
  tags                          = var.tags

  # No SSH or other local accounts on the nodes: jobs authenticate with the cluster's identity.
  local_auth_enabled = false

  scale_settings {
    min_node_count                       = var.cluster_min_nodes
    max_node_count                       = var.cluster_max_nodes
    scale_down_nodes_after_idle_duration = "PT10M"
  }

  identity {
    type = "SystemAssigned"
  }

  lifecycle {
    # The autopilot PATCHes scale settings on purpose; Terraform must not undo (or recreate for) that.
    ignore_changes = [scale_settings]
  }
}

# The workspace's resource logs (jobs, computes, quota, events) next to the autopilot's outcomes.
resource "azurerm_monitor_diagnostic_setting" "workspace" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_machine_learning_workspace.this.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category_group = "allLogs"
  }

  enabled_metric {
    category = "AllMetrics"
  }
}
