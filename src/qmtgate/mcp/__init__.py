"""``qmtgate mcp``: a Model Context Protocol server that lets AI assistants read the market (and, when both
the gateway and ``--allow-trading`` allow it, place two-step confirmed orders) through a qmtgate gateway.

Client side: it runs on the user's machine and talks to the gateway only through :mod:`qmtgate.client`
(import contract ``mcp-client-side``). See docs/mcp.md.
"""
