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
