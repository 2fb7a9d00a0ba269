# The Approver's container for Cloud Run: `gcloud run deploy --source .` builds it.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies in their own layer: rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected at build time and served by whitenoise.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input \
    && useradd --system --no-create-home approver
USER approver

# Cloud Run sets PORT. Google's Django sample runs one worker with eight threads; timeout 0
# leaves request timeouts to Cloud Run. gunicorn stops gracefully on SIGTERM.
ENV PORT=8080 \
    GUNICORN_WORKERS=1 \
    GUNICORN_THREADS=8 \
    GUNICORN_TIMEOUT=0 \
    GUNICORN_GRACEFUL_TIMEOUT=10
CMD exec gunicorn approver_site.wsgi:application \
    --bind ":$PORT" \
    --workers "$GUNICORN_WORKERS" \
    --threads "$GUNICORN_THREADS" \
    --timeout "$GUNICORN_TIMEOUT" \
    --graceful-timeout "$GUNICORN_GRACEFUL_TIMEOUT"
