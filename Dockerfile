# The Approver's container for Cloud Run: `gcloud run deploy --source .` builds it.
# Linted with hadolint (`make lint`); its command is tried by approvals/tests/test_container.py.
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

# Static files are collected at build time and served by whitenoise. The app runs as a user of
# its own (numeric, so that the platform can tell it is not root) that cannot write the code.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input \
    && groupadd --system --gid 10001 approver \
    && useradd --system --uid 10001 --gid approver --no-create-home approver
USER 10001:10001

# gunicorn on $PORT; workers, threads and timeouts from the environment (gunicorn.conf.py).
# Exec form: gunicorn is PID 1 and receives Cloud Run's SIGTERM itself, for a graceful stop.
# Migrations are a Cloud Run job from this image (docs/deploy.md), never run at start.
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
