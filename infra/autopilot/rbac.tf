# Least privilege for the Function App's user-assigned identity: exactly the actions its code uses.
#
# shared/adapters/permissions.py maps every request the adapters send to its RBAC action and scope;
# tests/unit/test_permissions.py holds these lists equal to that map, and
# tests/e2e/test_permissions.py runs every scenario against the emulator and holds the actions of the
# requests it journaled equal to them. An action missing here, or granted here and never used, fails.
#
# Custom roles: Azure accepts management groups, subscriptions and resource groups as assignable
# scopes, so the definitions live at the subscription and are *assigned* at the narrowest scope each
# action works at: the workspace for everything under workspaces/; the subscription for the
# location-level resources (/subscriptions/{id}/providers/Microsoft.MachineLearningServices/locations/
# {region}/...: usages, VM sizes and the long-running-operation monitors) and for the metrics batch
# API; each vault for the Key Vault data actions.
#
# Workspaces found through ALLOWED_SCOPES are not known to Terraform: with
# assign_roles_at_allowed_scopes the workspace operator and subscription reader roles are also
# assigned at each allowed subscription or management group, and every workspace and subscription
# under it inherits them. The secret rotator is not: vaults are always listed (ALLOWED_VAULTS), and
# a role with data actions cannot be assigned at a management group.

locals {
  principal_id = azurerm_user_assigned_identity.app.principal_id

  # ALLOWED_SCOPES, keyed without case as ARM compares ids (the first spelling of a scope wins).
  allowed_scope_spellings = { for s in split(",", var.allowed_scopes) : lower(trimsuffix(trimspace(s), "/")) => trimsuffix(trimspace(s), "/")... if trimspace(s) != "" }
  allowed_scopes          = { for k, spellings in local.allowed_scope_spellings : k => spellings[0] }
  this_subscription       = lower(data.azurerm_subscription.current.id)

  # Where each role is assigned besides its narrow scopes. The subscription reader is already
  # assigned at this subscription, and Azure refuses a second identical assignment.
  workspace_operator_scopes  = var.assign_roles_at_allowed_scopes ? local.allowed_scopes : {}
  subscription_reader_scopes = { for k, scope in local.workspace_operator_scopes : k => scope if k != local.this_subscription }

  # A custom role is assignable only where its assignable scopes say: this subscription, plus the
  # allowed scopes it is assigned at. Azure accepts at most one management group among them.
  extra_assignable_scopes = [for k, scope in local.workspace_operator_scopes : scope if k != local.this_subscription]
  management_group_scopes = [for k in keys(local.workspace_operator_scopes) : k if startswith(k, "/providers/")]

  # "Azure permissions for AI + machine learning" (Microsoft.MachineLearningServices).
  workspace_actions = [
    "Microsoft.MachineLearningServices/workspaces/read",
    "Microsoft.MachineLearningServices/workspaces/computes/read",
    "Microsoft.MachineLearningServices/workspaces/computes/write",
    "Microsoft.MachineLearningServices/workspaces/computes/stop/action",
    "Microsoft.MachineLearningServices/workspaces/computes/updateIdleShutdownSetting/action",
    "Microsoft.MachineLearningServices/workspaces/jobs/read",
    "Microsoft.MachineLearningServices/workspaces/experiments/runs/read",
    "Microsoft.MachineLearningServices/workspaces/jobs/cancel/action",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/read",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/delete",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/getLogs/action",
    "Microsoft.MachineLearningServices/workspaces/datastores/read",
    "Microsoft.MachineLearningServices/workspaces/datastores/write",
    "Microsoft.MachineLearningServices/workspaces/datastores/listsecrets/action",
    "Microsoft.MachineLearningServices/workspaces/resynckeys/action",
  ]

  # The same list for the AML location resources; "Azure permissions for Monitor" for the metrics
  # read. metrics:getBatch is a subscription-level API: Microsoft's "Migrate from the metrics API to
  # the getBatch API" says the caller needs metrics read on the subscription itself, and a grant on
  # every queried resource is not enough (so no per-workspace Monitoring Reader).
  subscription_actions = [
    "Microsoft.MachineLearningServices/locations/usages/read",
    "Microsoft.MachineLearningServices/locations/vmsizes/read",
    "Microsoft.MachineLearningServices/locations/computeoperationsstatus/read",
    "Microsoft.MachineLearningServices/locations/workspaceOperationsStatus/read",
    "Microsoft.MachineLearningServices/locations/mfeOperationsStatus/read",
    "Microsoft.MachineLearningServices/locations/mfeOperationResults/read",
    "Microsoft.Insights/metrics/read",
  ]

  # "Azure permissions for Security" (Microsoft.KeyVault data actions): list properties, read and
  # write a secret's value; no delete, purge, backup or restore (Key Vault Secrets Officer has them).
  vault_data_actions = [
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "Microsoft.KeyVault/vaults/secrets/setSecret/action",
  ]
}

resource "azurerm_role_definition" "workspace_operator" {
  name        = "AML Autopilot workspace operator (${var.name}-${local.suffix})"
  scope       = data.azurerm_subscription.current.id
  description = "Reads AML computes, jobs and datastores; stops idle instances, patches cluster scale settings, sets idle shutdown, updates datastore credentials and resyncs workspace keys."

  permissions {
    actions     = local.workspace_actions
    not_actions = []
  }

  assignable_scopes = concat([data.azurerm_subscription.current.id], local.extra_assignable_scopes)

  lifecycle {
    precondition {
      condition     = length(local.management_group_scopes) <= 1
      error_message = "allowed_scopes names more than one management group: Azure lets a custom role be assignable at one management group only. Name one (a common parent), or set assign_roles_at_allowed_scopes = false and assign the roles yourself."
    }
  }
}

resource "azurerm_role_definition" "subscription_reader" {
  name        = "AML Autopilot subscription reader (${var.name}-${local.suffix})"
  scope       = data.azurerm_subscription.current.id
  description = "Reads AML quota usages, VM sizes and the status of AML compute and workspace operations per region, and platform metrics through the metrics batch API."

  permissions {
    actions     = local.subscription_actions
    not_actions = []
  }

  assignable_scopes = concat([data.azurerm_subscription.current.id], local.extra_assignable_scopes)
}

resource "azurerm_role_definition" "secret_rotator" {
  name        = "AML Autopilot secret rotator (${var.name}-${local.suffix})"
  scope       = data.azurerm_subscription.current.id
  description = "Lists secret properties, reads and writes secret values; nothing else in the vault."

  permissions {
    actions          = []
    not_actions      = []
    data_actions     = local.vault_data_actions
    not_data_actions = []
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

resource "azurerm_role_assignment" "subscription_reader" {
  scope              = data.azurerm_subscription.current.id
  role_definition_id = azurerm_role_definition.subscription_reader.role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aml-autopilot ${var.name}: AML quota usages, VM sizes and operation status per region; instance CPU metrics"
}

# The workspaces Resource Graph finds under an allowed scope, and their subscriptions, inherit these
# two assignments: the same actions as above, at a wider scope. The app still acts only on the
# workspaces it allows (the allow-list guard), but the identity may act on every AML workspace
# under the scope, including those DISCOVERY_TAG leaves out.
#
# The role is named, not given by id: the provider then looks the definition up at the assignment's
# own scope, as `az role assignment create` does, and keeps the id ARM returns for that scope (another
# subscription's prefix, or none at a management group). An id written here in one form and read
# back in another would replace the assignment at every apply.
resource "azurerm_role_assignment" "workspace_operator_at_allowed_scope" {
  for_each             = local.workspace_operator_scopes
  scope                = each.value
  role_definition_name = azurerm_role_definition.workspace_operator.name
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: remediate computes and datastores of the workspaces discovered here (ALLOWED_SCOPES)"
}

resource "azurerm_role_assignment" "subscription_reader_at_allowed_scope" {
  for_each             = local.subscription_reader_scopes
  scope                = each.value
  role_definition_name = azurerm_role_definition.subscription_reader.name
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: AML quota usages, VM sizes, operation status and CPU metrics of the subscriptions discovered here (ALLOWED_SCOPES)"
}

# Storage Account Key Operator Service Role is exactly listkeys/action and regeneratekey/action
# ("Azure built-in roles for Storage"): what the rotation uses, so the built-in role is kept.
resource "azurerm_role_assignment" "storage_key_operator" {
  for_each             = var.rotated_storage_account_ids
  scope                = each.value
  role_definition_name = "Storage Account Key Operator Service Role"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: list keys and regenerate the key not in use"
}

resource "azurerm_role_assignment" "secret_rotator" {
  for_each           = var.vaults
  scope              = each.value.id
  role_definition_id = azurerm_role_definition.secret_rotator.role_definition_resource_id
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
  description        = "aml-autopilot ${var.name}: read managed credentials and write their new versions"
}

# Not a request of the code: the platform resolves the NOTIFY_WEBHOOK_URL and NOTIFY_EVENTGRID_KEY
# Key Vault references with the app's identity (key_vault_reference_identity_id).
resource "azurerm_role_assignment" "notify_key_reader" {
  count                = var.notify_secrets_vault_id != "" ? 1 : 0
  scope                = var.notify_secrets_vault_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: resolve the notification secrets' Key Vault references"
}

# The Function App's own storage account, reached with the identity (no account key): the host's
# blobs (leases, keys, the deployment package), its queues (the work queue and its poison queue)
# and the ledger table (shared/adapters/ledger.py). Event Grid dead-letters into the same account
# through the same identity (events.tf). The storage requests go to Azurite in the tests, not to
# the emulator whose journal test_permissions reads, hence their place in NOT_FOR_THE_CODE there.
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

# Telemetry: Application Insights accepts Entra-authenticated ingestion only (local authentication
# off in infra/shared); the host and the OpenTelemetry exporter send as this identity.
resource "azurerm_role_assignment" "telemetry_publisher" {
  scope                = var.app_insights_id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
  description          = "aml-autopilot ${var.name}: send its telemetry to Application Insights"
}
