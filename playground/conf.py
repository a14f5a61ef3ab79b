"""Playground settings, each overridable in portal/settings.py."""

from django.conf import settings

# Bodies up to this size live in the database row; larger ones in files named by their sha256.
INLINE_BODY_BYTES = getattr(settings, "PLAYGROUND_INLINE_BODY_BYTES", 64 * 1024)
BLOB_DIR = getattr(settings, "PLAYGROUND_BLOB_DIR", settings.VAR_DIR / "playground" / "blobs")
# What the page shows of an answer before offering the download instead.
PREVIEW_BYTES = getattr(settings, "PLAYGROUND_PREVIEW_BYTES", 256 * 1024)
# How often the watcher looks for an async answer, and when it gives up waiting.
ASYNC_CHECK_SECONDS = getattr(settings, "PLAYGROUND_ASYNC_CHECK_SECONDS", 5)
ASYNC_GIVE_UP_SECONDS = getattr(settings, "PLAYGROUND_ASYNC_GIVE_UP_SECONDS", 3 * 3600)
# A pinned example is a text a person can read and edit.
PIN_MAX_BYTES = getattr(settings, "PLAYGROUND_PIN_MAX_BYTES", 256 * 1024)
