"""Services: the domain operations behind the API. They validate what the contract requires, compose repository
calls into transactions, and announce changes on the notifier. They know nothing of HTTP."""
