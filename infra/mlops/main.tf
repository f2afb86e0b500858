# A small Azure Machine Learning landing zone to try the autopilot on: the workspace with its
# storage account and key vault, and one CPU cluster that scales to zero. Nothing here is needed
# by the autopilot itself; point it at real workspaces instead by leaving this module out.

data "azurerm_client_config" "current" {}

locals {
  # Storage account and vault names are global: a stable suffix keeps them unique per subscription.
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

  # AML's default datastores authenticate with the account key: that key is what the autopilot
  # rotates, so shared keys stay enabled here.
  shared_access_key_enabled       = true
  allow_nested_items_to_be_public = false
  tags                            = var.tags
}

resource "azurerm_key_vault" "ml" {
  name                       = "kvml${local.compact}${local.suffix}"
  resource_group_name        = var.resource_group_name
  location                   = var.location
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  enable_rbac_authorization  = true
  soft_delete_retention_days = 7
  purge_protection_enabled   = false
  tags                       = var.tags
}

resource "azurerm_machine_learning_workspace" "this" {
  name                          = "mlw-${var.name}"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  application_insights_id       = var.application_insights_id
  key_vault_id                  = azurerm_key_vault.ml.id
  storage_account_id            = azurerm_storage_account.ml.id
  public_network_access_enabled = true
  tags                          = var.tags

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
