"""sandbox layer (see ARCHITECTURE.md): a local QuickBooks Online v3 server for the demo and the tests.

It speaks the QBO v3 wire format (ARCHITECTURE.md, "QBO wire facts": OAuth with rotating refresh
tokens, the query language, CDC, reads and writes with SyncToken, QBO's faults and throttling,
webhooks) over a deterministic seeded company at any scale. It imports only the stdlib,
numpy and ``smartsync_pipeline.entities``.

Entry points: ``python -m smartsync_pipeline.sandbox serve`` (or ``smartsync sandbox serve``),
``process.SandboxProcess`` (a subprocess, for tests) and ``server.SandboxServer`` (in this process).
Modules, one idea each: ``company``/``base_tables``/``chart``/``row_hash`` (the seeded base),
``store`` (base + overlay), ``write_rules`` (writes and their money side effects), ``query_language``
and ``query_engine``, ``cdc``, ``oauth``, ``throttle``, ``faults``, ``clock``, ``simulator``,
``webhook_delivery``, ``state_journal``, ``stats``, ``control_api``, ``runtime``, ``server``, ``serve``.
"""
