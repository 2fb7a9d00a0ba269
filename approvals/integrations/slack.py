"""Slack's interactivity requests: `POST /integrations/slack/interactions`."""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def interactions(request):
    return HttpResponse("Slack is not built yet.", status=501)  # issue 16
