"""langgraph.json's `http` section applied to the ASGI app: CORS (`cors.py`), request headers copied into runs
(`headers.py`), and the user's own Starlette/FastAPI app composed with crongraph's API (`custom_app.py`)."""
