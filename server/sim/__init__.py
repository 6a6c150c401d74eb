"""A deterministic discrete-event simulator that runs the real ring, gossip, membership and node cores on
a virtual clock and a simulated network (no sockets, threads or wall clock; every run is seeded)."""
