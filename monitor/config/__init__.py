"""YAML + environment -> validated, frozen settings. Every problem names its key path.

fields (monitor/fields.py)  durations, names, the frozen model base (shared with notifiers)
instances    an instance, its checks (from the check specs' settings models), its alert overrides
schema       storage, web, alert rules, notifiers (from the notifier registry), maintenance, Settings
errors       ConfigError and one line per problem, with key paths and did-you-mean
environment  environment-only mode and the variables that override a file
loading      YAML reading, ${VAR} substitution, *_file secrets, validation
advice       validate's warnings
"""

from monitor.config.advice import api_requests_per_minute, warnings
from monitor.config.environment import ENV_VARIABLES
from monitor.config.errors import ConfigError
from monitor.config.instances import (
    ALERT_EVENTS,
    AlertEvent,
    Checks,
    Instance,
    InstanceAlerts,
    NotifyTarget,
)
from monitor.config.loading import from_env, from_mapping, load, load_any
from monitor.config.schema import (
    Alerts,
    BasicAuth,
    Delivery,
    MaintenanceWindow,
    Settings,
    Storage,
    Web,
)
from monitor.config.yamlread import MAX_DEPTH, MAX_NODES
from monitor.fields import NAME_PATTERN, Duration, format_duration, parse_duration

__all__ = [
    "ALERT_EVENTS",
    "ENV_VARIABLES",
    "MAX_DEPTH",
    "MAX_NODES",
    "NAME_PATTERN",
    "AlertEvent",
    "Alerts",
    "BasicAuth",
    "Checks",
    "ConfigError",
    "Delivery",
    "Duration",
    "Instance",
    "InstanceAlerts",
    "MaintenanceWindow",
    "NotifyTarget",
    "Settings",
    "Storage",
    "Web",
    "api_requests_per_minute",
    "format_duration",
    "from_env",
    "from_mapping",
    "load",
    "load_any",
    "parse_duration",
    "warnings",
]
