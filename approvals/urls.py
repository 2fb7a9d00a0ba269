"""URLs of the approvals app: the people's pages, the JSON API and the chat platforms'
endpoints, one namespace."""

from approvals.api import urls as api_urls
from approvals.integrations import urls as integration_urls
from approvals.web import urls as web_urls

app_name = "approvals"

# The API last: its catch-all answers JSON 404s under api/.
urlpatterns = web_urls.urlpatterns + integration_urls.urlpatterns + api_urls.urlpatterns
