"""FastAGI adapter: ``server.AgiServer`` (guarded panoramisk application) and its routes."""
