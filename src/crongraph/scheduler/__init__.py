"""The cron scheduler service: sleeps until the next due cron, claims and fires occurrences in one transaction.
The schedule math it uses is in `crongraph.schedules`."""
