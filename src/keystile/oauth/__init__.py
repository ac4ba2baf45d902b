"""OAuth 2.0 token endpoint and the MFA API, compatible with Auth0's clients.

Services (the flows layer): :mod:`.grants` (names), :mod:`.clients` (the client
registry), :mod:`.signing` (asymmetric signing keys), :mod:`.refresh` (refresh
token families) and :mod:`.service` (what each grant earns, through the sign-in
flow). Edges: :mod:`.routes` (``/oauth/token``, ``/passwordless/start``,
``/.well-known/*``), :mod:`.mfa_routes` (``/mfa/*``), :mod:`.answers` (RFC 6749
§5.2 bodies) and :mod:`.resource` (the resource-server helper).
"""
