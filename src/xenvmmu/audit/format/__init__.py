"""Output formats of ``xenvmmu audit``: thin classes over one :class:`AuditReport`.

Usage (the CLI)::

    from xenvmmu.audit.format import FORMATS, get_formatter, write_atomic

    text = get_formatter(args.format, color=use_color).render(report)
    if args.output:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)

``write_atomic`` writes regular files only (a symbolic link is followed to its target; a
device, FIFO, socket or directory is refused with ``OutputRefused``), atomically, with the
mode ``0666 & ~umask``.

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
    output_target,
    summarize,
    write_atomic,
)
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
    "output_target",
    "summarize",
    "write_atomic",
]
