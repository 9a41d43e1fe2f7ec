"""Web adapter: ``app.create_app(settings, state)`` builds the Starlette app ``serve`` runs."""
