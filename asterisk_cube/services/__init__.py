"""Application services: validate input, then write it in one transaction.

Adapters (CLI, web) call these with plain values; errors are
``ProvisioningError`` with a message that names the problem.
"""
