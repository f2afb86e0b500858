# One autopilot for a fleet of AML workspaces: the shared resource group, telemetry and Key Vault, an
# optional sample workspace to try it on, and the autopilot itself. Ids flow from shared into the
# other two modules as variables (key_vault_id, app_insights_id), never as lookups by name.

module "shared" {
  source              = "./shared"
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

module "mlops" {
  count                      = var.deploy_sample_workspace ? 1 : 0
  source                     = "./mlops"
  name                       = var.name
  location                   = module.shared.location
  resource_group_name        = module.shared.resource_group_name
  key_vault_id               = module.shared.key_vault_id
  app_insights_id            = module.shared.app_insights_id
  log_analytics_workspace_id = module.shared.log_analytics_workspace_id
  tags                       = var.tags
}

locals {
  # module.mlops has zero or one instance; iterating over it avoids indexing an absent instance, and
  # the fixed key keeps every for_each of the autopilot module known at plan time even though the
  # sample's ids are not known until it exists. The sample workspace keeps its secrets in the shared
  # vault, so the autopilot manages that vault when (and only when) the sample is deployed.
  sample_workspaces = { for m in module.mlops : "sample" => { id = m.workspace_id, location = module.shared.location, system_topic = null } }
  sample_vaults     = { for m in module.mlops : "sample" => { id = module.shared.key_vault_id, location = module.shared.location, system_topic = null } }
  sample_storage    = { for m in module.mlops : "sample" => m.storage_account_id }
}

module "autopilot" {
  source                                 = "./autopilot"
  name                                   = var.name
  location                               = module.shared.location
  resource_group_name                    = module.shared.resource_group_name
  application_insights_connection_string = module.shared.application_insights_connection_string
  app_insights_id                        = module.shared.app_insights_id
  log_analytics_workspace_id             = module.shared.log_analytics_workspace_id
  tags                                   = var.tags

  workspaces                  = merge(local.sample_workspaces, var.workspaces)
  vaults                      = merge(local.sample_vaults, var.vaults)
  rotated_storage_account_ids = merge(local.sample_storage, var.rotated_storage_account_ids)
  connect_triggers            = var.connect_triggers

  instance_memory_in_mb  = var.instance_memory_in_mb
  maximum_instance_count = var.maximum_instance_count

  autopilot_mode                = var.autopilot_mode
  notify_webhook_url            = var.notify_webhook_url
  notify_eventgrid_endpoint     = var.notify_eventgrid_endpoint
  notify_eventgrid_key          = var.notify_eventgrid_key
  notify_secrets_vault_id       = var.notify_secrets_vault_id
  quota_alert_threshold_percent = var.quota_alert_threshold_percent
  alert_email                   = var.alert_email

  model_deploy_failed_alert_threshold = var.model_deploy_failed_alert_threshold
  not_responding_runs_alert_threshold = var.not_responding_runs_alert_threshold
  failed_runs_alert_threshold         = var.failed_runs_alert_threshold
}
