"""Automatic call distribution: waiting calls, offers and agents, between the pure
routing core (``core.routing``, ``core.agents``) and the ARI adapter (``ari.inbound``).

``contract`` is what the agent desktop may ask; ``distributor.Distributor`` implements it
(the module map is in docs/architecture.md).
"""
