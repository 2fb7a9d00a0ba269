"""URLs of the approvals app: the people's pages and the JSON API, one namespace."""

from approvals.api import urls as api_urls
from approvals.web import urls as web_urls

app_name = "approvals"

urlpatterns = web_urls.urlpatterns + api_urls.urlpatterns
