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

  # Every other variable of the module, passed through from the root's variable of the same name
  # (the sample's workspace, vault and storage account merged in).
  instance_memory_in_mb               = var.instance_memory_in_mb
  maximum_instance_count              = var.maximum_instance_count
  rotated_storage_account_ids         = merge(local.sample_storage, var.rotated_storage_account_ids)
  notify_secrets_vault_id             = var.notify_secrets_vault_id
  alert_email                         = var.alert_email
  connect_triggers                    = var.connect_triggers
  assign_roles_at_allowed_scopes      = var.assign_roles_at_allowed_scopes
  event_max_delivery_attempts         = var.event_max_delivery_attempts
  event_ttl_minutes                   = var.event_ttl_minutes
  quota_alert_threshold_percent       = var.quota_alert_threshold_percent
  model_deploy_failed_alert_threshold = var.model_deploy_failed_alert_threshold
  not_responding_runs_alert_threshold = var.not_responding_runs_alert_threshold
  failed_runs_alert_threshold         = var.failed_runs_alert_threshold
  alert_severity                      = var.alert_severity

  # App settings.
  autopilot_mode                  = var.autopilot_mode
  workspaces                      = merge(local.sample_workspaces, var.workspaces)
  vaults                          = merge(local.sample_vaults, var.vaults)
  arm_endpoint                    = var.arm_endpoint
  arm_audience                    = var.arm_audience
  monitor_metrics_endpoint        = var.monitor_metrics_endpoint
  monitor_metrics_audience        = var.monitor_metrics_audience
  key_vault_url_template          = var.key_vault_url_template
  idle_threshold_minutes          = var.idle_threshold_minutes
  idle_grace_minutes              = var.idle_grace_minutes
  min_uptime_minutes              = var.min_uptime_minutes
  cpu_busy_percent                = var.cpu_busy_percent
  no_metrics_means                = var.no_metrics_means
  exempt_tag                      = var.exempt_tag
  exempt_name_pattern             = var.exempt_name_pattern
  idle_threshold_tag              = var.idle_threshold_tag
  idle_shutdown_minutes           = var.idle_shutdown_minutes
  cluster_idle_minutes            = var.cluster_idle_minutes
  cluster_max_scale_down_seconds  = var.cluster_max_scale_down_seconds
  quota_target_percent            = var.quota_target_percent
  max_actions_per_run             = var.max_actions_per_run
  max_actions_per_hour            = var.max_actions_per_hour
  cooldown_minutes                = var.cooldown_minutes
  idle_sweep_schedule             = var.idle_sweep_schedule
  cluster_sweep_schedule          = var.cluster_sweep_schedule
  deployment_sweep_schedule       = var.deployment_sweep_schedule
  failed_deployment_grace_minutes = var.failed_deployment_grace_minutes
  deployment_log_tail_lines       = var.deployment_log_tail_lines
  move_traffic_from_failed        = var.move_traffic_from_failed
  not_responding_cancel_minutes   = var.not_responding_cancel_minutes
  rotation_schedule               = var.rotation_schedule
  rotation_near_expiry_days       = var.rotation_near_expiry_days
  rotation_min_interval_hours     = var.rotation_min_interval_hours
  jobs_source                     = var.jobs_source
  jobs_full_listing_hours         = var.jobs_full_listing_hours
  ledger_table                    = var.ledger_table
  work_queue                      = var.work_queue
  notify_webhook_url              = var.notify_webhook_url
  notify_eventgrid_endpoint       = var.notify_eventgrid_endpoint
  notify_eventgrid_key            = var.notify_eventgrid_key
  notify_format                   = var.notify_format
  notify_owner_webhooks           = var.notify_owner_webhooks
  studio_tenant_id                = var.studio_tenant_id
  retail_prices_endpoint          = var.retail_prices_endpoint
  arm_timeout_seconds             = var.arm_timeout_seconds
  arm_max_retries                 = var.arm_max_retries
  allowed_scopes                  = var.allowed_scopes
  discovery_tag                   = var.discovery_tag
  discovery_refresh_minutes       = var.discovery_refresh_minutes
  arm_budget_percent              = var.arm_budget_percent
}
