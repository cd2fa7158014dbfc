"""What Inspect discovers through the package's ``inspect_ai`` entry point.

Import only registrations here (tasks, sandboxes, model providers); each
import must stay cheap and must not need an optional extra.
"""
