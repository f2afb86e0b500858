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
