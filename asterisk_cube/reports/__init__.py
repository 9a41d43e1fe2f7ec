"""Reports (F-M2, F-E3), computed by SQL over the call, attempt, state-log and enquiry tables.

Every report function takes a session and a :class:`Period` (whole local days in an IANA
zone) and returns a :class:`Report` (``columns`` + plain dict ``rows``) that the CLI prints
as a table, CSV or JSON and the web layer can chart. See each module for the definitions.
"""

from .agents import agent_states
from .common import Period, Report, ReportError
from .enquiries import enquiries
from .inbound import inbound
from .outbound import outbound, outbound_outcomes
from .recordings import recordings

__all__ = [
    "Period",
    "Report",
    "ReportError",
    "agent_states",
    "enquiries",
    "inbound",
    "outbound",
    "outbound_outcomes",
    "recordings",
]
