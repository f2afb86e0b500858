"""The only modules that import Azure SDKs. They return `shared.model` values, never SDK objects."""
