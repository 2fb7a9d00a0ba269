"""The project's URLs plus the baseline endpoint the registration benchmark compares against."""

import json
import uuid
from datetime import timedelta

from django.http import JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from approvals.models import ApprovalRequest
from approver_site.urls import handler400, handler500  # noqa: F401
from approver_site.urls import urlpatterns as site_urlpatterns


@csrf_exempt
def baseline(request):
    """Parse the JSON and insert one row through the ORM; nothing else (no auth, no checks)."""
    data = json.loads(request.body)
    now = timezone.now()
    row = ApprovalRequest.objects.create(
        callback_url=data.get("callback_url") or f"http://baseline.invalid/{uuid.uuid4()}",
        title=str(data.get("title", ""))[:200],
        requester_email=str(data.get("requester_email", "")),
        requester_key=str(data.get("requester_email", "")).lower() or "(none)",
        registered_by="bench-baseline",
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    return JsonResponse({"id": str(row.pk)}, status=201)


urlpatterns = [path("bench/baseline", baseline), *site_urlpatterns]
