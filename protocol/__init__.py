"""The wire format between clients, proxies and nodes: messages, framing, limits (sans-io)."""
