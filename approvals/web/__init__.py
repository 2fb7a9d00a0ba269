"""The people's pages: the inbox, a request's page, bulk decisions, delegations, e-mail links."""
