"""``supersub explore``: a local web app to query, explain, steer and edit a routed memory, and to
browse its mistakes.

:class:`Explorer` holds the model side (queries, steering previews, edits
through the writer lock), :class:`Mistakes` one evaluation, and
:func:`create_app` the Starlette application with its security rules;
:class:`ExploreServer` runs it with uvicorn in a background thread.

Needs the ``explore`` extra (Starlette, uvicorn, python-multipart).
"""

from ._app import ExploreServer, create_app
from ._explorer import EditRecord, Explorer, parse_steer
from ._images import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS
from ._mistakes import Mistakes
from ._security import LOOPBACK_HOSTS, allowed_hosts_for, check_host, cross_site_refusal

__all__ = [
    "EditRecord",
    "LOOPBACK_HOSTS",
    "ExploreServer",
    "Explorer",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "Mistakes",
    "allowed_hosts_for",
    "check_host",
    "create_app",
    "cross_site_refusal",
    "parse_steer",
]
