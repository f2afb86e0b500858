output "workspace_id" {
  description = "Resource id of the sample AML workspace."
  value       = azurerm_machine_learning_workspace.this.id
}

output "workspace_name" {
  description = "Name of the sample AML workspace."
  value       = azurerm_machine_learning_workspace.this.name
}

output "key_vault_id" {
  description = "Resource id of the sample key vault (RBAC authorization)."
  value       = azurerm_key_vault.ml.id
}

output "key_vault_uri" {
  description = "Data-plane URI of the sample key vault."
  value       = azurerm_key_vault.ml.vault_uri
}

output "storage_account_id" {
  description = "Resource id of the workspace's storage account (its keys back the default datastores)."
  value       = azurerm_storage_account.ml.id
}

output "cluster_id" {
  description = "Resource id of the sample CPU cluster."
  value       = azurerm_machine_learning_compute_cluster.cpu.id
}
