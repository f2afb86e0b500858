output "resource_group_name" {
  description = "Name of the shared resource group."
  value       = azurerm_resource_group.this.name
}

output "resource_group_id" {
  description = "Resource id of the shared resource group."
  value       = azurerm_resource_group.this.id
}

output "location" {
  description = "Region of the shared resources."
  value       = azurerm_resource_group.this.location
}

output "log_analytics_workspace_id" {
  description = "Resource id of the Log Analytics workspace."
  value       = azurerm_log_analytics_workspace.this.id
}

output "app_insights_id" {
  description = "Resource id of the Application Insights component."
  value       = azurerm_application_insights.this.id
}

output "application_insights_connection_string" {
  description = "Connection string of the Application Insights component."
  value       = azurerm_application_insights.this.connection_string
  sensitive   = true
}

output "key_vault_id" {
  description = "Resource id of the shared Key Vault (RBAC authorization, purge protection on)."
  value       = azurerm_key_vault.this.id
}

output "key_vault_uri" {
  description = "Data-plane URI of the shared Key Vault."
  value       = azurerm_key_vault.this.vault_uri
}
