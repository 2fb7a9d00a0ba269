"""Settings for `make bench` only: the production settings plus the baseline endpoint's URLs.

Never deployed. The driver (`bench/driver.py`) sets the environment that the production
settings read.
"""

from approver_site.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# The callback receiver and the metadata server are local stand-ins on plain http, while the
# callbacks carry a (stand-in) access token as in production; approvals.E002 refuses exactly
# that combination, rightly in production, so the bench silences it.
SILENCED_SYSTEM_CHECKS = ["approvals.E002"]
