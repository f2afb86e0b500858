variable "subscription_id" {
  description = "Subscription of the autopilot and of the workspaces it manages."
  type        = string
}

variable "name" {
  description = "Short name of the fleet, used in resource names (lower case letters, digits and dashes)."
  type        = string
  default     = "autopilot"
}

variable "location" {
  description = "Azure region of the shared resources, the Function App and the sample workspace."
  type        = string
  default     = "westeurope"
}

variable "resource_group_name" {
  description = "Name of the resource group to create (empty: rg-<name>)."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "instance_memory_in_mb" {
  description = "Memory of each Flex Consumption instance of the Function App (512, 2048 or 4096)."
  type        = number
  default     = 2048
}

variable "maximum_instance_count" {
  description = "Most instances the Function App scales out to (Flex Consumption)."
  type        = number
  default     = 40
}

variable "deploy_sample_workspace" {
  description = "Create the sample AML landing zone (infra/mlops: workspace, storage, container registry, cluster) and let the autopilot manage it and the shared vault."
  type        = bool
  default     = true
}

variable "workspaces" {
  description = "Existing AML workspaces to manage, keyed by a short label (see the autopilot module's workspaces variable)."
  type = map(object({
    id       = string
    location = string
    system_topic = optional(object({
      name                = string
      resource_group_name = string
    }))
  }))
  default = {}
}

variable "vaults" {
  description = "Existing Key Vaults (RBAC authorization) holding managed credentials, keyed by a short label."
  type = map(object({
    id       = string
    location = string
    system_topic = optional(object({
      name                = string
      resource_group_name = string
    }))
  }))
  default = {}
}

variable "rotated_storage_account_ids" {
  description = "Existing storage accounts whose keys the autopilot rotates, keyed by a short label."
  type        = map(string)
  default     = {}
}

variable "connect_triggers" {
  description = "Wire Event Grid, the action group and the metric alerts to the functions. They need the deployed code: azd's postdeploy hook sets it (CONNECT_TRIGGERS); with Terraform alone, set it true on the apply after the code is deployed."
  type        = bool
  default     = false
}

variable "autopilot_mode" {
  description = "AUTOPILOT_MODE: observe (plan, log, notify) or enforce (act)."
  type        = string
  default     = "observe"
}

variable "notify_webhook_url" {
  description = "Versionless Key Vault secret id holding NOTIFY_WEBHOOK_URL (the app setting becomes a Key Vault reference); empty: no webhook."
  type        = string
  default     = ""
}

variable "notify_eventgrid_endpoint" {
  description = "NOTIFY_EVENTGRID_ENDPOINT: optional Event Grid custom topic endpoint."
  type        = string
  default     = ""
}

variable "notify_eventgrid_key" {
  description = "Versionless Key Vault secret id holding the topic's access key (becomes a Key Vault reference)."
  type        = string
  default     = ""
}

variable "notify_secrets_vault_id" {
  description = "Resource id of the vault holding those two secrets (the identity may read secrets there)."
  type        = string
  default     = ""
}

variable "alert_email" {
  description = "Optional e-mail address told when the autopilot itself fails (exceptions, poison messages, dead-lettered events)."
  type        = string
  default     = ""
}

variable "quota_alert_threshold_percent" {
  description = "Quota Utilization Percentage above which the quota alert fires."
  type        = number
  default     = 85
}

variable "model_deploy_failed_alert_threshold" {
  description = "Model Deploy Failed count (total over 5 minutes) above which the alert fires."
  type        = number
  default     = 0
}

variable "not_responding_runs_alert_threshold" {
  description = "Not Responding Runs count (total over 5 minutes) above which the alert fires."
  type        = number
  default     = 0
}

variable "failed_runs_alert_threshold" {
  description = "Failed Runs count (total over 5 minutes) above which the alert fires."
  type        = number
  default     = 0
}
