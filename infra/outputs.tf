output "resource_group_name" {
  description = "The shared resource group."
  value       = module.shared.resource_group_name
}

output "function_app_name" {
  description = "Name of the Function App: azd deploys the code there (or `func azure functionapp publish <name> --python`)."
  value       = module.autopilot.function_app_name
}

output "principal_id" {
  description = "Object id of the app's user-assigned managed identity."
  value       = module.autopilot.principal_id
}

output "client_id" {
  description = "Client id of the app's user-assigned managed identity."
  value       = module.autopilot.client_id
}

# azd reads the root outputs into its environment: azure.yaml names the service's resource group and
# Function App with these two.
output "AZURE_RESOURCE_GROUP" {
  description = "The shared resource group (for azd)."
  value       = module.shared.resource_group_name
}

output "AZURE_FUNCTION_APP_NAME" {
  description = "Name of the Function App (for azd)."
  value       = module.autopilot.function_app_name
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

output "key_vault_id" {
  description = "Resource id of the shared Key Vault (the sample workspace's vault)."
  value       = module.shared.key_vault_id
}

output "sample_container_registry_id" {
  description = "Resource id of the sample workspace's container registry (null without it)."
  value       = one(module.mlops[*].container_registry_id)
}
