"""ARI adapter: the Stasis app.

``client.AriClient`` is the lean ARI client (aiohttp: REST pool + event websocket);
``supervisor.AriSupervisor`` keeps its connection up (reconnect with backoff,
re-sync) and feeds events to a ``StasisHandler``; the inbound/outbound apps are handlers.
"""
