variable "name" {
  description = "Short name of the fleet, used in resource names (lower case letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name))
    error_message = "name must be 2 to 16 characters: lower case letters, digits and dashes, starting with a letter."
  }
}

variable "location" {
  description = "Azure region of the shared resources."
  type        = string
}

variable "resource_group_name" {
  description = "Name of the resource group to create (empty: rg-<name>)."
  type        = string
  default     = ""
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace and Application Insights, in days."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "key_vault_retention_days" {
  description = "Soft-delete retention of the Key Vault and its secrets, in days (7 to 90). Purge protection is on: a destroyed vault keeps its name for this long, and a new apply recovers it."
  type        = number
  default     = 90

  validation {
    condition     = var.key_vault_retention_days >= 7 && var.key_vault_retention_days <= 90
    error_message = "key_vault_retention_days must be 7 to 90."
  }
}
