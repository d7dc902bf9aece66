"""Custom authentication and authorization: langgraph.json's `auth.path`, a `langgraph_sdk.Auth` instance.

- `loader.py` imports the user's Auth object; `authenticate.py` runs its `@auth.authenticate` for a request;
  `middleware.py` does that for every protected route and sets the caller (`context.py`) for the request;
- `handlers.py` runs the `@auth.on...` handler for a (resource, action) and checks the filter it returns, which
  services hand to `storage/filters.py` to apply in SQL;
- `users.py` is the user object handlers and graphs see, and its stored form.

This package file imports nothing, so that low layers may import `crongraph.auth.context` and `crongraph.auth.users`
(plain values) without pulling in the SDK or the HTTP layer.
"""
