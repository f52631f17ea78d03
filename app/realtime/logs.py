"""Log lines a machine can search: one JSON object per line (LOG_FORMAT=json), the same in
every process (gunicorn's own access and error logs too; see settings' LOGGING).

Each line carries the process, the request id nginx gave the request (``request_id``, see
realtime.request_id) and, where the code names them with ``extra=``, the socket id, user,
group, close code...: a notification can be followed from its POST (gunicorn's access
line) to its push and to every socket it reached (daphne's ``realtime.delivery`` lines).

Only the fields below are written, never whatever else a record holds (Django hangs the
whole request on some of them): tokens, cookies and message bodies stay out of the logs.
"""

import json
import logging
import os
import sys
from datetime import UTC, datetime

# ``extra=`` fields written when a record has them.
FIELDS = (
    "request_id", "socket", "user", "group", "endpoint", "path", "code", "duration",
    "event_type", "event_id", "sockets", "status_code",
)  # fmt: skip
# gunicorn's access log atoms (its record's args) → our field names.
ACCESS_FIELDS = {
    "{x-forwarded-for}i": "client", "m": "method", "U": "path", "H": "protocol",
    "s": "status", "B": "bytes", "M": "duration_ms", "{x-request-id}i": "request_id",
}  # fmt: skip

# What names this process in its log lines: set by the launchers (deploy/run_daphne.py:
# "daphne-1"; deploy/gunicorn.conf.py: "gunicorn"); else the program's name.
process_name = os.path.basename(sys.argv[0]).removesuffix(".py") or "python"


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": process_name,
            "pid": record.process,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            entry.update(self.access_fields(record.args))
        else:
            entry["message"] = record.getMessage()
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None and field not in entry:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)

    @staticmethod
    def access_fields(atoms):
        fields = {}
        for atom, field in ACCESS_FIELDS.items():
            value = atoms[atom]
            if value not in ("-", None):
                fields[field] = int(value) if field in ("status", "bytes", "duration_ms") else value
        return fields
