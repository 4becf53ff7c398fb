"""The dispatcher: ticket events from the queue become agent runs, one per ticket.

    goresolve dispatch --mode local        runs `goresolve resolve` as subprocesses (a concurrency cap)
    goresolve dispatch --mode kubernetes   one Job per ticket from the chart's template (caps per repo and total)

A ticket about a repository the policy set's repos.yaml does not name starts no run (a hook on a whole
organisation, or an issue in a repository nobody registered, costs no Job).

Every way a dispatch ends is recorded (outcome, cost, duration) in the run ledger; a run that dies
without an outcome, or that ends in an error of the agent's (a model or setting it cannot use), is escalated
to a human, never retried forever.

    DispatchError
     ├── AlreadyDispatched     the ticket already has a run (HTTP 409 on the Job name); nothing was created
     ├── ClusterRefused        the API server refused a request (403 outside the Role, 422 invalid, ...)
     ├── PolicyUnreadable      repos.yaml, the list of repositories that may have runs, cannot be read
     └── TemplateError         the Job template is missing or not a batch/v1 Job
"""

from agent.dispatch.errors import AlreadyDispatched, ClusterRefused, DispatchError, PolicyUnreadable, TemplateError
from agent.dispatch.results import RunRecord
from agent.dispatch.settings import DispatchSettings
from agent.dispatch.tickets import Ticket

__all__ = [
    "AlreadyDispatched",
    "ClusterRefused",
    "DispatchError",
    "DispatchSettings",
    "PolicyUnreadable",
    "RunRecord",
    "TemplateError",
    "Ticket",
]
