"""The JSON API the workflows (and, with personal tokens, people) call."""
