"""Cron scheduling: pure expression and due-occurrence math (expression, policy) and the firing service."""
