# Event Grid: the workspaces' and vaults' system topics deliver to the on_event function.
#
# Azure allows one system topic per source resource; a source that already has one names it in
# its system_topic attribute and gets a subscription on it (that topic must carry the app's
# user-assigned identity too, for dead-lettering: see infra/README.md). New topics live in the
# source's own resource group and region, as the portal would create them.

locals {
  workspace_topics_to_create = { for k, w in var.workspaces : k => w if w.system_topic == null }
  vault_topics_to_create     = { for k, v in var.vaults : k => v if v.system_topic == null }

  workspace_topics = merge(
    { for k, w in var.workspaces : k => w.system_topic if w.system_topic != null },
    { for k, t in azurerm_eventgrid_system_topic.workspace : k => { name = t.name, resource_group_name = t.resource_group_name } },
  )
  vault_topics = merge(
    { for k, v in var.vaults : k => v.system_topic if v.system_topic != null },
    { for k, t in azurerm_eventgrid_system_topic.vault : k => { name = t.name, resource_group_name = t.resource_group_name } },
  )

  dead_letter_container = "eventgrid-deadletter"
}

resource "azurerm_eventgrid_system_topic" "workspace" {
  for_each            = local.workspace_topics_to_create
  name                = "egst-${replace(element(split("/", each.value.id), 8), "_", "-")}"
  resource_group_name = element(split("/", each.value.id), 4)
  location            = each.value.location
  source_resource_id  = each.value.id
  topic_type          = "Microsoft.MachineLearningServices.Workspaces"
  tags                = var.tags

  # Dead letters are written with the app's identity: its storage takes no account key.
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }
}

resource "azurerm_eventgrid_system_topic" "vault" {
  for_each            = local.vault_topics_to_create
  name                = "egst-${replace(element(split("/", each.value.id), 8), "_", "-")}"
  resource_group_name = element(split("/", each.value.id), 4)
  location            = each.value.location
  source_resource_id  = each.value.id
  topic_type          = "Microsoft.KeyVault.vaults"
  tags                = var.tags

  # Dead letters are written with the app's identity: its storage takes no account key.
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }
}

# Events Event Grid gave up on (attempts or time to live exhausted) land here for inspection.
resource "azurerm_storage_container" "dead_letter" {
  name                  = local.dead_letter_container
  storage_account_id    = azurerm_storage_account.func.id
  container_access_type = "private"

  #checkov:skip=CKV2_AZURE_21:Blob writes are logged by the blob service's diagnostic setting (func_storage in observability.tf), which the dead-letter alert reads; not by the retired Log Analytics storage insights this check looks for
}

# A job that failed or was canceled may leave its cluster scaled up or its instance idle; one that
# stopped responding holds its compute and its owner is told. The runStatus filter applies to RunStatusChanged only (RunCompleted carries no runStatus), hence two
# subscriptions. Event Grid compares strings case-insensitively.
resource "azurerm_eventgrid_system_topic_event_subscription" "run_status" {
  for_each              = var.connect_triggers ? local.workspace_topics : {}
  name                  = "autopilot-${var.name}-run-status"
  system_topic          = each.value.name
  resource_group_name   = each.value.resource_group_name
  event_delivery_schema = "EventGridSchema"
  included_event_types  = ["Microsoft.MachineLearningServices.RunStatusChanged"]

  azure_function_endpoint {
    function_id          = local.on_event_function_id
    max_events_per_batch = 1
  }

  advanced_filter {
    string_in {
      key    = "data.runStatus"
      values = ["Failed", "Canceled", "NotResponding"]
    }
  }

  retry_policy {
    max_delivery_attempts = var.event_max_delivery_attempts
    event_time_to_live    = var.event_ttl_minutes
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.func.id
    storage_blob_container_name = azurerm_storage_container.dead_letter.name
  }

  dead_letter_identity {
    type                   = "UserAssigned"
    user_assigned_identity = azurerm_user_assigned_identity.app.id
  }

  depends_on = [azurerm_role_assignment.workspace_operator, azurerm_role_assignment.func_storage]
}

resource "azurerm_eventgrid_system_topic_event_subscription" "run_completed" {
  for_each              = var.connect_triggers ? local.workspace_topics : {}
  name                  = "autopilot-${var.name}-run-completed"
  system_topic          = each.value.name
  resource_group_name   = each.value.resource_group_name
  event_delivery_schema = "EventGridSchema"
  included_event_types  = ["Microsoft.MachineLearningServices.RunCompleted"]

  azure_function_endpoint {
    function_id          = local.on_event_function_id
    max_events_per_batch = 1
  }

  retry_policy {
    max_delivery_attempts = var.event_max_delivery_attempts
    event_time_to_live    = var.event_ttl_minutes
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.func.id
    storage_blob_container_name = azurerm_storage_container.dead_letter.name
  }

  dead_letter_identity {
    type                   = "UserAssigned"
    user_assigned_identity = azurerm_user_assigned_identity.app.id
  }

  depends_on = [azurerm_role_assignment.workspace_operator, azurerm_role_assignment.func_storage]
}

resource "azurerm_eventgrid_system_topic_event_subscription" "secret_expiry" {
  for_each              = var.connect_triggers ? local.vault_topics : {}
  name                  = "autopilot-${var.name}-secret-expiry"
  system_topic          = each.value.name
  resource_group_name   = each.value.resource_group_name
  event_delivery_schema = "EventGridSchema"
  included_event_types = [
    "Microsoft.KeyVault.SecretNearExpiry",
    "Microsoft.KeyVault.SecretExpired",
  ]

  azure_function_endpoint {
    function_id          = local.on_event_function_id
    max_events_per_batch = 1
  }

  retry_policy {
    max_delivery_attempts = var.event_max_delivery_attempts
    event_time_to_live    = var.event_ttl_minutes
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.func.id
    storage_blob_container_name = azurerm_storage_container.dead_letter.name
  }

  dead_letter_identity {
    type                   = "UserAssigned"
    user_assigned_identity = azurerm_user_assigned_identity.app.id
  }

  depends_on = [
    azurerm_role_assignment.secret_rotator,
    azurerm_role_assignment.storage_key_operator,
    azurerm_role_assignment.func_storage,
  ]
}
