terraform {
  required_version = ">= 1.6"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }
}

provider "azurerm" {
  # azurerm 4.x needs the subscription explicitly (or ARM_SUBSCRIPTION_ID in the environment).
  subscription_id = var.subscription_id

  features {
    key_vault {
      # The sample vault holds rotated credentials: never purge them as a side effect of destroy.
      purge_soft_delete_on_destroy = false
    }
  }
}
