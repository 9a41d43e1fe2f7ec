"""ARI adapter: the Stasis app.

``supervisor.AriSupervisor`` keeps the asyncari connection up (reconnect with backoff,
re-sync) and feeds events to a ``StasisHandler``; the inbound/outbound apps are handlers.
"""
