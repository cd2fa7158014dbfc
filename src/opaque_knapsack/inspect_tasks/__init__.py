"""inspect_tasks."""
