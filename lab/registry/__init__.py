"""The experiment registry: its tables (`schema`), the `Registry` store, schema `migrations`, the `--where`
language (`query`), JSON `views` of its records and database `urls`. The names below are its public API."""
from lab.registry.schema import (
           SCHEMA_VERSION,
           dataset_of,
           experiments,
           meta_table,
           metadata,
           tags,
           trials,
)
from lab.registry.store import (
           HEARTBEAT_EVERY_S,
           Registry,
           clean_metrics,
           display_status,
           now,
)
from lab.registry.urls import credentialed_url, normalize_url, public_url, safe_url

__all__ = ["HEARTBEAT_EVERY_S", "SCHEMA_VERSION", "Registry", "clean_metrics", "credentialed_url", "dataset_of",
           "display_status", "experiments", "meta_table", "metadata", "normalize_url", "now", "public_url", "safe_url",
           "tags", "trials"]
