"""Notices to people: what is due (`reminders`), the mail itself (`notices`), its signed links."""
