"""Who is calling: Google's tokens and credentials, the API's callers, IAP, and sign-in."""
