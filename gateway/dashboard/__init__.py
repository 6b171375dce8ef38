"""The web dashboard's server side: the private HTTP API of docs/dashboard.md, the page's
static files, the log buffer and the health readings. The page itself is in ``static/``."""
