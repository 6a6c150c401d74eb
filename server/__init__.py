"""The cloud: the ring, server nodes, proxies and the shoplist-server command."""
