"""Alerts: tell the team in its chat, through a webhook, when an endpoint needs attention, when a
deployment fails and when an endpoint recovers."""
