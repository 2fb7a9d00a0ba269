"""The chat platforms' endpoints: Slack's interactivity requests (`slack`) and Google Chat's
events (`google_chat`), each verified as its platform signs them, and what both do when a person
decides from a message (`deciding`): find the app user, call `services.decide`, say the outcome."""
