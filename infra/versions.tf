terraform {
  required_version = ">= 1.6"

  # 4.42 is the first release with the argument names used here (rbac_authorization_enabled on the
  # vault; storage_account_id on containers, azurerm_function_app_flex_consumption and the system
  # topics' source_resource_id are older). 5.0 removes the deprecated ones: pin below it.
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.42, < 5.0"
    }
    # One property azurerm cannot set on a Flex Consumption app (autopilot/main.tf).
    azapi = {
      source  = "Azure/azapi"
      version = ">= 2.0, < 3.0"
    }
  }
}

provider "azurerm" {
  # azurerm 4.x needs the subscription explicitly (or ARM_SUBSCRIPTION_ID in the environment).
  subscription_id = var.subscription_id

  # The app's storage takes no account key: the provider reaches its data plane with Entra ID too.
  storage_use_azuread = true

  features {
    key_vault {
      # The shared vault holds rotated credentials: never purge them as a side effect of destroy
      # (with purge protection on, Azure refuses a purge anyway).
      purge_soft_delete_on_destroy = false
    }
  }
}

provider "azapi" {
  subscription_id = var.subscription_id
}
