"""Notices to people: what is due (`reminders`), the deciders' mail itself (`notices`), its
signed links (`links`), and the requester's outcome mail when a request closes (`outcome`)."""
