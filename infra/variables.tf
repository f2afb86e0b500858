# The root module's variables: where the fleet lives, then every variable of the autopilot module
# (infra/autopilot) an operator sets, each declared here with the module's own type, default,
# validation and description and passed through unchanged in main.tf. A variable the root does not
# declare cannot be set from terraform.tfvars or azd (Terraform refuses it as undeclared), so the
# module's default would stay; tests/unit/test_infra.py fails when one is missing or differs.

variable "subscription_id" {
  description = "Subscription of the autopilot and of the workspaces it manages."
  type        = string
}

variable "name" {
  description = "Short name of the fleet, used in resource names (lower case letters, digits and dashes)."
  type        = string
  default     = "autopilot"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name))
    error_message = "name must be 2 to 16 characters: lower case letters, digits and dashes, starting with a letter."
  }
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

variable "deploy_sample_workspace" {
  description = "Create the sample AML landing zone (infra/mlops: workspace, storage, container registry, cluster) and let the autopilot manage it and the shared vault."
  type        = bool
  default     = true
}

# --- The autopilot module: where and how it runs -----------------------------------------------
# workspaces, vaults and rotated_storage_account_ids are merged with the sample's in main.tf.

variable "instance_memory_in_mb" {
  description = "Memory of each Flex Consumption instance, in MB. The autopilot is I/O-bound (ARM, Monitor, Key Vault, storage): 2048 is ample; 512 is the cheapest size where the region offers it."
  type        = number
  default     = 2048

  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_in_mb)
    error_message = "instance_memory_in_mb must be 512, 2048 or 4096."
  }
}

variable "maximum_instance_count" {
  description = "Most instances the Function App scales out to. The work is small and capped per run and per hour by the app itself; a low ceiling also bounds the concurrent calls to ARM. Older 4.x releases of the provider accept 40 to 1000."
  type        = number
  default     = 40

  validation {
    condition     = var.maximum_instance_count >= 1 && var.maximum_instance_count <= 1000
    error_message = "maximum_instance_count must be 1 to 1000."
  }
}

variable "rotated_storage_account_ids" {
  description = "Storage accounts whose keys the autopilot rotates (the ProviderAddress of managed secrets), keyed by a short label known at plan time."
  type        = map(string)
  default     = {}
}

variable "notify_secrets_vault_id" {
  description = "Resource id of the vault holding the notification secrets (notify_webhook_url, notify_eventgrid_key); the identity gets Key Vault Secrets User there to resolve their references."
  type        = string
  default     = ""
}

variable "alert_email" {
  description = "Optional e-mail address told when the autopilot itself fails (exceptions, poison messages, dead-lettered events)."
  type        = string
  default     = ""
}

variable "connect_triggers" {
  description = "Create the Event Grid subscriptions, the action group and the metric alerts. Leave false on the first apply: Event Grid validates the on_event function and the webhook needs the host's function key, both of which exist only once the code is deployed."
  type        = bool
  default     = false
}

variable "assign_roles_at_allowed_scopes" {
  description = "Assign the app's identity its custom workspace operator and subscription reader roles at each scope of allowed_scopes, so that it may read and act on the workspaces Resource Graph finds there (the roles' assignable scopes are widened to those scopes). The grant covers every AML workspace under the scope, including those DISCOVERY_TAG leaves out. The grant includes stopping computes, cancelling jobs and reading datastore secrets under the whole scope, so it is off by default: set true only when every workspace there may be acted on, or assign narrower roles yourself (the deployer then needs no rights at those scopes)."
  type        = bool
  default     = false
}

variable "event_max_delivery_attempts" {
  description = "Event Grid retries of one event before it is dead-lettered."
  type        = number
  default     = 10

  validation {
    condition     = var.event_max_delivery_attempts >= 1 && var.event_max_delivery_attempts <= 30
    error_message = "event_max_delivery_attempts must be 1 to 30."
  }
}

variable "event_ttl_minutes" {
  description = "Event Grid time to live of one event, in minutes, before it is dead-lettered."
  type        = number
  default     = 1440

  validation {
    condition     = var.event_ttl_minutes >= 1 && var.event_ttl_minutes <= 1440
    error_message = "event_ttl_minutes must be 1 to 1440."
  }
}

variable "quota_alert_threshold_percent" {
  description = "Quota Utilization Percentage above which the quota alert fires (per VM family and cluster)."
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

variable "alert_severity" {
  description = "Severity (0 to 4) of the metric alerts."
  type        = number
  default     = 2
}

# --- The autopilot module: app settings, one variable per entry of shared/settings.py's CATALOGUE ---

variable "autopilot_mode" {
  description = "AUTOPILOT_MODE: `observe` (plan, log, notify; no writes) or `enforce` (act)."
  type        = string
  default     = "observe"

  validation {
    condition     = contains(["observe", "enforce"], var.autopilot_mode)
    error_message = "AUTOPILOT_MODE must be observe or enforce."
  }
}

variable "workspaces" {
  description = "ALLOWED_WORKSPACES: AML workspaces the autopilot may read, act on and accept events from, keyed by a short label known at plan time. location is the workspace's region; system_topic names an existing Event Grid system topic of the workspace (Azure allows one per source) instead of creating one."
  type = map(object({
    id       = string
    location = string
    system_topic = optional(object({
      name                = string
      resource_group_name = string
    }))
  }))
  # Empty when allowed_scopes discovers the workspaces (infra/autopilot/main.tf checks that one of the two is set).
  default = {}

  validation {
    condition     = alltrue([for w in values(var.workspaces) : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.MachineLearningServices/workspaces/[^/]+$", w.id))])
    error_message = "ALLOWED_WORKSPACES: every id must be a Microsoft.MachineLearningServices/workspaces resource id."
  }
}

variable "vaults" {
  description = "ALLOWED_VAULTS: Key Vaults (RBAC authorization) whose events are accepted and whose managed credentials are rotated, keyed by a short label known at plan time. location and system_topic as for workspaces."
  type = map(object({
    id       = string
    location = string
    system_topic = optional(object({
      name                = string
      resource_group_name = string
    }))
  }))
  default = {}

  validation {
    condition     = alltrue([for v in values(var.vaults) : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.KeyVault/vaults/[^/]+$", v.id))])
    error_message = "ALLOWED_VAULTS: every id must be a Microsoft.KeyVault/vaults resource id."
  }
}

variable "arm_endpoint" {
  description = "ARM_ENDPOINT: Azure Resource Manager endpoint (sovereign clouds or the local emulator)."
  type        = string
  default     = "https://management.azure.com"
}

variable "arm_audience" {
  description = "ARM_AUDIENCE: token audience for ARM."
  type        = string
  default     = "https://management.azure.com"
}

variable "monitor_metrics_endpoint" {
  description = "MONITOR_METRICS_ENDPOINT: Azure Monitor metrics data-plane endpoint; `{region}` is the workspace's location."
  type        = string
  default     = "https://{region}.metrics.monitor.azure.com"
}

variable "monitor_metrics_audience" {
  description = "MONITOR_METRICS_AUDIENCE: token audience for Azure Monitor metrics."
  type        = string
  default     = "https://metrics.monitor.azure.com"
}

variable "key_vault_url_template" {
  description = "KEY_VAULT_URL_TEMPLATE: Key Vault data-plane URL; `{name}` is the vault name."
  type        = string
  default     = "https://{name}.vault.azure.net"
}

variable "idle_threshold_minutes" {
  description = "IDLE_THRESHOLD_MINUTES: a running compute instance with no activity for this long is idle."
  type        = number
  default     = 120
}

variable "idle_grace_minutes" {
  description = "IDLE_GRACE_MINUTES: time between warning the owner of an idle instance and stopping it."
  type        = number
  default     = 60
}

variable "min_uptime_minutes" {
  description = "MIN_UPTIME_MINUTES: never stop an instance started less than this long ago."
  type        = number
  default     = 30
}

variable "cpu_busy_percent" {
  description = "CPU_BUSY_PERCENT: CPU utilization above which a minute counts as activity."
  type        = number
  default     = 5

  validation {
    condition     = var.cpu_busy_percent >= 0 && var.cpu_busy_percent <= 100
    error_message = "CPU_BUSY_PERCENT must be 0 to 100."
  }
}

variable "no_metrics_means" {
  description = "NO_METRICS_MEANS: how to treat an instance with no CPU metric data: `busy` (never stop) or `idle`."
  type        = string
  default     = "busy"

  validation {
    condition     = contains(["busy", "idle"], var.no_metrics_means)
    error_message = "NO_METRICS_MEANS must be busy or idle."
  }
}

variable "exempt_tag" {
  description = "EXEMPT_TAG: a compute tagged with this key (value not `false`) is never touched."
  type        = string
  default     = "autopilot-exempt"
}

variable "exempt_name_pattern" {
  description = "EXEMPT_NAME_PATTERN: regular expression; computes whose name matches are never touched (empty: none)."
  type        = string
  default     = ""
}

variable "idle_threshold_tag" {
  description = "IDLE_THRESHOLD_TAG: tag overriding IDLE_THRESHOLD_MINUTES for one instance."
  type        = string
  default     = "autopilot-idle-minutes"
}

variable "idle_shutdown_minutes" {
  description = "IDLE_SHUTDOWN_MINUTES: AML's own idle shutdown enforced on instances that lack it or have a longer one (15 to 4320; 0 disables)."
  type        = number
  default     = 60

  validation {
    condition     = var.idle_shutdown_minutes == 0 || (var.idle_shutdown_minutes >= 15 && var.idle_shutdown_minutes <= 4320)
    error_message = "IDLE_SHUTDOWN_MINUTES must be 0 or 15 to 4320."
  }
}

variable "cluster_idle_minutes" {
  description = "CLUSTER_IDLE_MINUTES: a cluster with min nodes above 0 and no active or queued job for this long is scaled to min 0."
  type        = number
  default     = 60
}

variable "cluster_max_scale_down_seconds" {
  description = "CLUSTER_MAX_SCALE_DOWN_SECONDS: cap on a cluster's idle time before scale down."
  type        = number
  default     = 1800
}

variable "quota_target_percent" {
  description = "QUOTA_TARGET_PERCENT: quota relief frees cores until projected utilization of the family is below this."
  type        = number
  default     = 80

  validation {
    condition     = var.quota_target_percent >= 1 && var.quota_target_percent <= 100
    error_message = "QUOTA_TARGET_PERCENT must be 1 to 100."
  }
}

variable "max_actions_per_run" {
  description = "MAX_ACTIONS_PER_RUN: blast-radius cap, writes per sweep or event."
  type        = number
  default     = 10
}

variable "max_actions_per_hour" {
  description = "MAX_ACTIONS_PER_HOUR: blast-radius cap, writes per rolling hour, all triggers together."
  type        = number
  default     = 30
}

variable "cooldown_minutes" {
  description = "COOLDOWN_MINUTES: no second write to the same resource within this time."
  type        = number
  default     = 30
}

variable "idle_sweep_schedule" {
  description = "IDLE_SWEEP_SCHEDULE: NCRONTAB schedule of the idle-instance sweep."
  type        = string
  default     = "0 */15 * * * *"
}

variable "cluster_sweep_schedule" {
  description = "CLUSTER_SWEEP_SCHEDULE: NCRONTAB schedule of the cluster sweep."
  type        = string
  default     = "0 5-59/15 * * * *"
}

variable "deployment_sweep_schedule" {
  description = "DEPLOYMENT_SWEEP_SCHEDULE: NCRONTAB schedule of the sweep for failed online deployments."
  type        = string
  default     = "0 10-59/15 * * * *"
}

variable "failed_deployment_grace_minutes" {
  description = "FAILED_DEPLOYMENT_GRACE_MINUTES: time between telling the owner of a failed deployment with no traffic and deleting it."
  type        = number
  default     = 120

  validation {
    condition     = var.failed_deployment_grace_minutes >= 0 && var.failed_deployment_grace_minutes <= 43200
    error_message = "FAILED_DEPLOYMENT_GRACE_MINUTES must be 0 to 43200."
  }
}

variable "deployment_log_tail_lines" {
  description = "DEPLOYMENT_LOG_TAIL_LINES: lines of a failed deployment's inference-server log read to say why it failed."
  type        = number
  default     = 50

  validation {
    condition     = var.deployment_log_tail_lines >= 1 && var.deployment_log_tail_lines <= 1000
    error_message = "DEPLOYMENT_LOG_TAIL_LINES must be 1 to 1000."
  }
}

variable "move_traffic_from_failed" {
  description = "MOVE_TRAFFIC_FROM_FAILED: opt-in to move traffic off a failed deployment; not implemented, so only false is accepted."
  type        = string
  default     = "false"

  validation {
    condition     = var.move_traffic_from_failed == "false"
    error_message = "MOVE_TRAFFIC_FROM_FAILED: moving traffic is not implemented; a failed deployment with traffic is reported, never changed."
  }
}

variable "not_responding_cancel_minutes" {
  description = "NOT_RESPONDING_CANCEL_MINUTES: opt-in, cancel a job not responding for longer than this (0: never cancel, only tell)."
  type        = number
  default     = 0

  validation {
    condition     = var.not_responding_cancel_minutes >= 0 && var.not_responding_cancel_minutes <= 43200
    error_message = "NOT_RESPONDING_CANCEL_MINUTES must be 0 to 43200."
  }
}

variable "rotation_schedule" {
  description = "ROTATION_SCHEDULE: NCRONTAB schedule of the credential rotation sweep."
  type        = string
  default     = "0 30 2 * * *"
}

variable "rotation_near_expiry_days" {
  description = "ROTATION_NEAR_EXPIRY_DAYS: the rotation sweep rotates a managed credential expiring within this many days."
  type        = number
  default     = 30

  validation {
    condition     = var.rotation_near_expiry_days >= 1 && var.rotation_near_expiry_days <= 365
    error_message = "ROTATION_NEAR_EXPIRY_DAYS must be 1 to 365."
  }
}

variable "rotation_min_interval_hours" {
  description = "ROTATION_MIN_INTERVAL_HOURS: never rotate one credential twice within this time."
  type        = number
  default     = 24
}

variable "jobs_source" {
  description = "JOBS_SOURCE: where a sweep finds the jobs on a compute: run-history (AML's run history, per compute, by status; ARM's jobs list when it cannot answer) or arm (ARM's jobs list only)."
  type        = string
  default     = "run-history"
  validation {
    condition     = contains(["run-history", "arm"], var.jobs_source)
    error_message = "jobs_source must be run-history or arm."
  }
}

variable "jobs_full_listing_hours" {
  description = "JOBS_FULL_LISTING_HOURS: a sweep reads a workspace's whole job list at least this often; in between it lists the jobs created since and reads the active ones it keeps in the ledger by name."
  type        = number
  default     = 24
  validation {
    condition     = var.jobs_full_listing_hours >= 1 && var.jobs_full_listing_hours <= 168
    error_message = "JOBS_FULL_LISTING_HOURS must be 1 to 168."
  }
}

variable "ledger_table" {
  description = "LEDGER_TABLE: table (in AzureWebJobsStorage) holding claims, marks and outcomes."
  type        = string
  default     = "autopilotledger"
}

variable "work_queue" {
  description = "WORK_QUEUE: queue (in AzureWebJobsStorage) for per-workspace work handed off by triggers."
  type        = string
  default     = "autopilot-work"
}

variable "notify_webhook_url" {
  description = "NOTIFY_WEBHOOK_URL: versionless Key Vault secret id (https://<vault>.vault.azure.net/secrets/<name>) holding the JSON webhook URL (Teams or Slack workflow) that receives one message per outcome; the app setting becomes a Key Vault reference. Empty: no webhook."
  type        = string
  default     = ""

  validation {
    condition     = var.notify_webhook_url == "" || can(regex("^https://[^/]+/secrets/[^/]+/?$", var.notify_webhook_url))
    error_message = "notify_webhook_url must be a versionless Key Vault secret id (https://<vault>.vault.azure.net/secrets/<name>), not the URL itself."
  }
}

variable "notify_eventgrid_endpoint" {
  description = "NOTIFY_EVENTGRID_ENDPOINT: optional Event Grid custom topic endpoint receiving CloudEvents per outcome."
  type        = string
  default     = ""
}

variable "notify_eventgrid_key" {
  description = "NOTIFY_EVENTGRID_KEY: versionless Key Vault secret id holding the topic's access key; the app setting becomes a Key Vault reference. Empty: none."
  type        = string
  default     = ""

  validation {
    condition     = var.notify_eventgrid_key == "" || can(regex("^https://[^/]+/secrets/[^/]+/?$", var.notify_eventgrid_key))
    error_message = "notify_eventgrid_key must be a versionless Key Vault secret id (https://<vault>.vault.azure.net/secrets/<name>), not the key itself."
  }
}

variable "notify_format" {
  description = "NOTIFY_FORMAT: webhook message shape: text, teams (Adaptive Card for a Teams Workflows webhook) or slack (Block Kit)."
  type        = string
  default     = "text"
  validation {
    condition     = contains(["text", "teams", "slack"], var.notify_format)
    error_message = "notify_format must be text, teams or slack."
  }
}

variable "notify_owner_webhooks" {
  description = "NOTIFY_OWNER_WEBHOOKS: JSON object of owner UPN → https webhook receiving that owner's idle warnings (e.g. jsonencode({...}); empty: none)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "studio_tenant_id" {
  description = "STUDIO_TENANT_ID: optional Entra tenant id added to Azure ML studio links in messages."
  type        = string
  default     = ""
}

variable "retail_prices_endpoint" {
  description = "RETAIL_PRICES_ENDPOINT: Azure Retail Prices API for the report's money estimate."
  type        = string
  default     = "https://prices.azure.com/api/retail/prices"
}

variable "arm_timeout_seconds" {
  description = "ARM_TIMEOUT_SECONDS: per-request timeout for Azure calls."
  type        = number
  default     = 20
}

variable "arm_max_retries" {
  description = "ARM_MAX_RETRIES: retries of a transient Azure error (429 honouring Retry-After, 5xx, timeouts) before giving up."
  type        = number
  default     = 3
}

variable "allowed_scopes" {
  description = "ALLOWED_SCOPES: comma-separated subscriptions (/subscriptions/{id}) or management groups (/providers/Microsoft.Management/managementGroups/{id}) whose AML workspaces are allowed too, found through Azure Resource Graph. The app's identity needs its workspace and subscription roles at these scopes: assign_roles_at_allowed_scopes assigns them."
  type        = string
  default     = ""

  validation {
    condition     = alltrue([for s in split(",", var.allowed_scopes) : trimspace(s) == "" || can(regex("(?i)^/subscriptions/[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}/?$", trimspace(s))) || can(regex("(?i)^/providers/Microsoft\\.Management/managementGroups/[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]/?$", trimspace(s)))])
    error_message = "ALLOWED_SCOPES: every entry must be /subscriptions/<guid> or /providers/Microsoft.Management/managementGroups/<name>."
  }
}

variable "discovery_tag" {
  description = "DISCOVERY_TAG: optional key=value (or key): only workspaces of allowed_scopes carrying this tag (the value compared case-insensitively) are allowed."
  type        = string
  default     = ""
}

variable "discovery_refresh_minutes" {
  description = "DISCOVERY_REFRESH_MINUTES: how long the workspaces found in allowed_scopes are trusted before Resource Graph is asked again."
  type        = number
  default     = 60
}

variable "arm_budget_percent" {
  description = "ARM_BUDGET_PERCENT: share of ARM's per-subscription request budget one instance may use; maximum_instance_count times this should stay within 100."
  type        = number
  default     = 50

  validation {
    condition     = var.arm_budget_percent >= 1 && var.arm_budget_percent <= 100
    error_message = "ARM_BUDGET_PERCENT must be 1 to 100."
  }
}
