"""The REST API under ``/api``: one router module per resource, plus the shared request
dependencies (``deps``) and the error shape (``errors``)."""
