"""`make bench`: the app under gunicorn and PostgreSQL against the natural baselines (issue 8)."""
