"""One router per resource; each is mounted under ``/api/v1`` by :func:`qmtgate.api.app.create_app`."""
