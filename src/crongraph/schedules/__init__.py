"""Schedule math, pure and at the bottom of the house: parsing and explaining cron expressions with their time
zone and daylight-saving rules (`expression`), and which occurrences are due and what the missed-occurrence policy
does with them (`policy`). Imports nothing of crongraph's, so services and the scheduler both build on it."""
