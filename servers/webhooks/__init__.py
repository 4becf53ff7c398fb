"""The webhook gateway: verify, answer fast, enqueue durably (an HTTP service, not MCP).

It imports neither consumer: pushes go to the `code-index` queue, tickets to the `tickets` queue,
as plain JSON events (workqueue/event.schema.json).
"""
