variable "name" {
  description = "Short name used in resource names (lower case letters, digits and dashes)."
  type        = string
}

variable "location" {
  description = "Azure region of the sample workspace."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the sample workspace."
  type        = string
}

variable "key_vault_id" {
  description = "Key Vault of the workspace (infra/shared): its secrets, datastore credentials among them."
  type        = string
}

variable "app_insights_id" {
  description = "Application Insights component the workspace reports to (infra/shared)."
  type        = string
}

variable "log_analytics_workspace_id" {
  description = "Log Analytics workspace (infra/shared) receiving the workspace's resource logs."
  type        = string
}

variable "container_registry_sku" {
  description = "SKU of the workspace's container registry. Basic keeps the sample cheap; Premium adds private endpoints, retention and geo-replication."
  type        = string
  default     = "Basic"

  validation {
    condition     = contains(["Basic", "Standard", "Premium"], var.container_registry_sku)
    error_message = "container_registry_sku must be Basic, Standard or Premium."
  }
}

variable "cluster_name" {
  description = "Name of the sample CPU cluster."
  type        = string
  default     = "cpu-cluster"
}

variable "cluster_vm_size" {
  description = "VM size of the sample cluster's nodes (small and cheap by default)."
  type        = string
  default     = "Standard_DS2_v2"
}

variable "cluster_min_nodes" {
  description = "Minimum nodes of the sample cluster. Above 0 it bills while idle: exactly what the cluster sweep scales back down."
  type        = number
  default     = 0
}

variable "cluster_max_nodes" {
  description = "Maximum nodes of the sample cluster."
  type        = number
  default     = 2
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
