"""Observability: the metrics registry and its collectors (`metrics.py`), log setup (`logs.py`), the HTTP
middleware that counts and logs requests (`http.py`) and the cron and run events other modules emit
(`events.py`). Other modules only emit through `events`; nothing here reaches back into them."""
