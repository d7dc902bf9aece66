"""Storage: the only code that writes SQL. One repository module per aggregate, each a set of functions that take
an open connection, so that a service composes several of them into one transaction."""
