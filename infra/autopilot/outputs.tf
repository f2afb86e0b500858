output "function_app_name" {
  description = "Name of the Function App (where azd deploy, or func azure functionapp publish, puts the code)."
  value       = azurerm_function_app_flex_consumption.this.name
}

output "function_app_id" {
  description = "Resource id of the Function App."
  value       = azurerm_function_app_flex_consumption.this.id
}

output "function_app_hostname" {
  description = "Default host name of the Function App."
  value       = azurerm_function_app_flex_consumption.this.default_hostname
}

output "principal_id" {
  description = "Object id of the app's user-assigned identity (the principal of every role assignment)."
  value       = azurerm_user_assigned_identity.app.principal_id
}

output "client_id" {
  description = "Client id of the app's user-assigned identity (AZURE_CLIENT_ID, AzureWebJobsStorage__clientId)."
  value       = azurerm_user_assigned_identity.app.client_id
}

output "workbook_id" {
  description = "Resource id of the autopilot's Application Insights workbook."
  value       = azurerm_application_insights_workbook.autopilot.id
}

output "storage_account_name" {
  description = "Name of the Function App's storage account (ledger table, work queue, deployment package, dead letters)."
  value       = azurerm_storage_account.func.name
}

output "alerts_webhook_url" {
  description = "URL of the alerts function with its key, as the action group calls it (empty until connect_triggers is true)."
  value       = local.alerts_webhook_url
  sensitive   = true
}

output "workspace_role_definition_id" {
  description = "Resource id of the custom role assigned on each workspace."
  value       = azurerm_role_definition.workspace_operator.role_definition_resource_id
}
