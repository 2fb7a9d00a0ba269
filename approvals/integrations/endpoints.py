"""What the chat platforms' endpoints share: they take POSTs only, and say so when sent anything
else (Django's `require_POST` answers an empty 405)."""

import functools

from django.views.decorators.csrf import csrf_exempt

POST_ONLY = "This endpoint takes POST requests only, as the chat platform sends them."


def post_only(answer):
    """Make a view a chat platform's endpoint: no CSRF token (the platform signs its requests
    instead), and a 405 with `POST_ONLY` in the endpoint's own error shape, `answer(message,
    status)`, for any other method."""

    def decorate(view):
        @functools.wraps(view)
        def endpoint(request, *args, **kwargs):
            if request.method != "POST":
                refused = answer(POST_ONLY, 405)
                refused["Allow"] = "POST"
                return refused
            return view(request, *args, **kwargs)

        return csrf_exempt(endpoint)

    return decorate
