"""The Runway Service: the smart read path over HTTP (ASGI), with API keys, HTTP caching semantics for
freshness, RFC 9457 problems, OAuth onboarding and the QBO webhook receiver on the same server.
See ARCHITECTURE.md ("The Runway Service")."""
