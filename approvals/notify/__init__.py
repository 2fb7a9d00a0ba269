"""Notices to people: when each is due (`reminders`, `outcome`), who is told of what (`notices`),
the outbox that sends each once per person and channel (`outbox`), the channels themselves
(`channels`: e-mail, Slack, Google Chat), what a chat message says (`chat`, laid out for Slack by
`slack_layout`), and the e-mails' signed decision links (`links`)."""
