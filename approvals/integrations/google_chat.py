"""Google Chat's interaction events: `POST /integrations/google-chat/events`."""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def events(request):
    return HttpResponse("Google Chat is not built yet.", status=501)  # issue 16
