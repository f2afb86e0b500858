# Least privilege for the Function App's system-assigned identity.
#
# Custom roles: Azure accepts management groups, subscriptions and resource groups as assignable
# scopes, so the definitions live at the subscription and are *assigned* at the narrowest scope
# each action works at: the workspace for everything under workspaces/, the subscription for the
# location-level reads (usages and VM sizes are subscription resources:
# /subscriptions/{id}/providers/Microsoft.MachineLearningServices/locations/{region}/...).

locals {
  principal_id = azurerm_linux_function_app.this.identity[0].principal_id

  # Checked against "Azure permissions for AI + machine learning" (Microsoft.MachineLearningServices).
  workspace_actions = [
    "Microsoft.MachineLearningServices/workspaces/read",
    "Microsoft.MachineLearningServices/workspaces/computes/read",
    "Microsoft.MachineLearningServices/workspaces/computes/write",
    "Microsoft.MachineLearningServices/workspaces/computes/stop/action",
    "Microsoft.MachineLearningServices/workspaces/computes/updateIdleShutdownSetting/action",
    "Microsoft.MachineLearningServices/workspaces/computes/listNodes/action",
    "Microsoft.MachineLearningServices/workspaces/jobs/read",
    "Microsoft.MachineLearningServices/workspaces/datastores/read",
    "Microsoft.MachineLearningServices/workspaces/datastores/write",
    "Microsoft.MachineLearningServices/workspaces/datastores/listsecrets/action",
    "Microsoft.MachineLearningServices/workspaces/resynckeys/action",
  ]

  subscription_actions = concat(
    [
      "Microsoft.MachineLearningServices/locations/usages/read",
      "Microsoft.MachineLearningServices/locations/vmsizes/read",
    ],
    var.grant_subscription_metrics_read ? ["Microsoft.Insights/metrics/read"] : [],
  )
}

resource "azurerm_role_definition" "workspace_operator" {
  name        = "AML Autopilot workspace operator (${var.name}-${local.suffix})"
  scope       = data.azurerm_subscription.current.id
  description = "Reads AML computes, jobs and datastores; stops idle instances, patches cluster scale settings, sets idle shutdown, updates datastore credentials and resyncs workspace keys."

  permissions {
    actions     = local.workspace_actions
    not_actions = []
  }

  assignable_scopes = [data.azurerm_subscription.current.id]
}

resource "azurerm_role_definition" "subscription_reader" {
  name        = "AML Autopilot subscription reader (${var.name}-${local.suffix})"
  scope       = data.azurerm_subscription.current.id
  description = "Reads AML quota usages and VM sizes per region, and platform metrics."

  permissions {
    actions     = local.subscription_actions
    not_actions = []
  }

  assignable_scopes = [data.azurerm_subscription.current.id]
}

resource "azurerm_role_assignment" "workspace_operator" {
  for_each           = var.workspaces
  scope              = each.value.id
  role_definition_id = azurerm_role_definition.workspace_operator.role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aml-autopilot ${var.name}: remediate computes and datastores of this workspace"
}

resource "azurerm_role_assignment" "workspace_monitoring_reader" {
  for_each             = var.workspaces
  scope                = each.value.id
  role_definition_name = "Monitoring Reader"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: read this workspace's metrics (instance CPU activity)"
}

resource "azurerm_role_assignment" "subscription_reader" {
  scope              = data.azurerm_subscription.current.id
  role_definition_id = azurerm_role_definition.subscription_reader.role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aml-autopilot ${var.name}: AML quota usages and VM sizes per region"
}

resource "azurerm_role_assignment" "storage_key_operator" {
  for_each             = var.rotated_storage_account_ids
  scope                = each.value
  role_definition_name = "Storage Account Key Operator Service Role"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: list and regenerate the key not in use"
}

resource "azurerm_role_assignment" "vault_secrets_officer" {
  for_each             = var.vaults
  scope                = each.value.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: read managed credentials and write their new versions"
}

resource "azurerm_role_assignment" "notify_key_reader" {
  count                = var.notify_eventgrid_key_vault_id != "" ? 1 : 0
  scope                = var.notify_eventgrid_key_vault_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: resolve the NOTIFY_EVENTGRID_KEY reference"
}

# The Function App's own storage account, for identity-based access: the ledger table, the work
# queue and the host's blobs (leases, keys). Today the app authenticates with the connection string
# (see main.tf); these grants let it move to AzureWebJobsStorage__accountName without a new deploy.
resource "azurerm_role_assignment" "func_storage" {
  for_each = toset([
    "Storage Table Data Contributor",
    "Storage Queue Data Contributor",
    "Storage Blob Data Owner",
  ])
  scope                = azurerm_storage_account.func.id
  role_definition_name = each.value
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: its own storage"
}
