# One image for the web server, the Celery worker and beat, and the local runtime.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORTAL_VAR_DIR=/var/lib/portal \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DJANGO_SETTINGS_MODULE=portal.production SECRET_KEY=build-only \
    python manage.py collectstatic --noinput \
 && useradd --system --home /app portal \
 && mkdir -p /var/lib/portal && chown portal /var/lib/portal
USER portal
EXPOSE 8000 8081
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
