"""Output formats of ``xenvmmu audit``: thin classes over one :class:`AuditReport`.

Usage (the CLI: the findings are written as the audit makes them)::

    from xenvmmu.audit.api import iter_audit
    from xenvmmu.audit.format import FORMATS, get_formatter, open_atomic

    audit = iter_audit(paths, host, settings)
    formatter = get_formatter(args.format, color=use_color)
    if args.output:
        with open_atomic(args.output) as out:
            formatter.write(audit, out)
    else:
        formatter.write(audit, sys.stdout)

``formatter.render(report)`` gives the same text for a finished ``AuditReport``.
``open_atomic`` and ``write_atomic`` (one string) write regular files only (a symbolic link
is followed to its target; a device, FIFO, socket or directory is refused with
``OutputRefused``), atomically, with the mode ``0666 & ~umask``.

``FORMATS`` maps each ``--format`` choice to its class; ``DEFAULT_FORMAT`` is ``table``.
Importing this package (or any module in it) registers every format.
"""

from xenvmmu.audit.format.base import (
    DEFAULT_FORMAT,
    FORMATS,
    Formatter,
    OutputRefused,
    Summary,
    get_formatter,
    open_atomic,
    output_target,
    summarize,
    write_atomic,
)
from xenvmmu.audit.format.csvfmt import CsvFormatter as CsvFormatter
from xenvmmu.audit.format.jsonfmt import JsonFormatter
from xenvmmu.audit.format.markdown import MarkdownFormatter
from xenvmmu.audit.format.openvex import OpenVexFormatter
from xenvmmu.audit.format.prometheus import PrometheusFormatter
from xenvmmu.audit.format.sarif import SarifFormatter
from xenvmmu.audit.format.table import TableFormatter

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "Formatter",
    "JsonFormatter",
    "MarkdownFormatter",
    "OpenVexFormatter",
    "OutputRefused",
    "PrometheusFormatter",
    "SarifFormatter",
    "Summary",
    "TableFormatter",
    "get_formatter",
    "open_atomic",
    "output_target",
    "summarize",
    "write_atomic",
]
