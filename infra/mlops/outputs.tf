output "workspace_id" {
  description = "Resource id of the sample AML workspace."
  value       = azurerm_machine_learning_workspace.this.id
}

output "workspace_name" {
  description = "Name of the sample AML workspace."
  value       = azurerm_machine_learning_workspace.this.name
}

output "storage_account_id" {
  description = "Resource id of the workspace's storage account (its keys back the default datastores)."
  value       = azurerm_storage_account.ml.id
}

output "cluster_id" {
  description = "Resource id of the sample CPU cluster."
  value       = azurerm_machine_learning_compute_cluster.cpu.id
}

output "container_registry_id" {
  description = "Resource id of the workspace's container registry."
  value       = azurerm_container_registry.ml.id
}
