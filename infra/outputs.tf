output "resource_group_name" {
  description = "The shared resource group."
  value       = module.shared.resource_group_name
}

output "function_app_name" {
  description = "Name of the Function App: publish the code with `func azure functionapp publish <name> --python`."
  value       = module.autopilot.function_app_name
}

output "principal_id" {
  description = "Object id of the Function App's managed identity."
  value       = module.autopilot.principal_id
}

output "alerts_webhook_url" {
  description = "URL (with function key) the action group calls."
  value       = module.autopilot.alerts_webhook_url
  sensitive   = true
}

output "sample_workspace_id" {
  description = "Resource id of the sample AML workspace (null without it)."
  value       = one(module.mlops[*].workspace_id)
}

output "sample_key_vault_id" {
  description = "Resource id of the sample key vault (null without it)."
  value       = one(module.mlops[*].key_vault_id)
}
