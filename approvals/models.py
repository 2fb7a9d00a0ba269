"""The approval domain's data: requests, who may decide them, decisions and the audit log.

Models hold fields, constraints, indexes and small derived properties only. Every change of state
goes through `approvals.services`, which writes the matching audit event in the same transaction;
an audit event links itself to its request's previous one as it is saved (`approvals.audit`).
"""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from approvals import audit, emails

# Field limits: the columns' sizes. Registration (`approvals.registration`) and the forms check
# values against these same names, so whatever they accept fits its column.
MAX_TITLE = 200
MAX_CALLBACK_URL = 2000
MAX_EXTERNAL_ID = 200
MAX_EMAIL = emails.MAX_LENGTH  # RFC 5321's limit on a forward path: every e-mail column
MAX_GROUP_NAME = 150  # django.contrib.auth's Group.name
MAX_NOTE = 200  # a delegation's note, a reassignment's
MAX_COMMENT = 5000  # a decision's comment (a text column: the forms and the API keep to it)
AMOUNT_MAX_DIGITS = 18
AMOUNT_DECIMAL_PLACES = 3


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    CHANGES_REQUESTED = "changes_requested", "Sent back"


class Outcome(models.TextChoices):
    APPROVED = "approved", "Approve"
    REJECTED = "rejected", "Reject"
    CHANGES_REQUESTED = "changes_requested", "Send back"


# Each outcome in words for people, as done: "Approved by ...", "You sent back ...".
OUTCOME_DONE = {
    Outcome.APPROVED: "approved",
    Outcome.REJECTED: "rejected",
    Outcome.CHANGES_REQUESTED: "sent back",
}
# The outcomes that close a request at once, whatever `required_approvals` says.
CLOSING_OUTCOMES = (Outcome.REJECTED, Outcome.CHANGES_REQUESTED)
# The longest status or outcome word, the columns' size.
MAX_STATUS = 20


class DeliveryStatus(models.TextChoices):
    """The state of the callback to the waiting workflow (drawn in the README)."""

    NONE = "none", "Nothing to send"
    DUE = "due", "Due"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    GONE = "gone", "Gone (workflow no longer waits)"
    FAILED = "failed", "Failed"


# A callback still to be sent: the delivery pass's states, and its index's condition.
ACTIVE_DELIVERY_STATES = (DeliveryStatus.DUE, DeliveryStatus.RETRYING)


@dataclass(frozen=True)
class DeliveryWords:
    """A callback state in words for people: `summary` on the request page and in the admin;
    `news` (with its `level`, Django's name of a message level) what the person who just decided
    is told of the first attempt, "" for a state a first attempt never ends in."""

    summary: str
    news: str = ""
    level: str = "INFO"


# Every callback state's words; `{problem}` in news stands for `delivery_problem`.
DELIVERY_WORDS = {
    DeliveryStatus.NONE: DeliveryWords("nothing to send yet"),
    # Due after a decision: the delivery job claimed the callback before the first attempt could.
    DeliveryStatus.DUE: DeliveryWords(
        "being sent", "Your decision is stored and is being sent to the workflow."
    ),
    DeliveryStatus.RETRYING: DeliveryWords(
        "callback failed, will retry",
        "Your decision is stored, but the workflow could not be told yet: {problem} "
        "It will be sent again automatically.",
        "WARNING",
    ),
    DeliveryStatus.DELIVERED: DeliveryWords(
        "delivered", "The workflow has received your decision."
    ),
    DeliveryStatus.GONE: DeliveryWords(
        "the workflow no longer waits",
        "The workflow no longer waits for this decision (its execution has ended). "
        "Your decision is stored here.",
        "WARNING",
    ),
    DeliveryStatus.FAILED: DeliveryWords(
        "callback failed, gave up",
        "Your decision is stored, but the callback failed and will not be retried "
        "automatically: {problem} Tell an administrator.",
        "ERROR",
    ),
}


# Names of the errors a callback attempt stores as "Name: message" (approvals/delivery.py),
# grouped by what they mean to people: requests' failures to reach the endpoint, and
# google-auth's failures to get the access token the callback is sent with.
UNREACHABLE_ERRORS = {"ConnectionError", "SSLError", "ProxyError"}
CREDENTIALS_ERRORS = {
    "RefreshError",
    "TransportError",
    "DefaultCredentialsError",
    "GoogleAuthError",
    "MalformedError",
    "OAuthError",
    "ReauthFailError",
    "UserAccessTokenError",
}


def callback_problem(status_code: int | None, error: str) -> str:
    """A failed callback attempt in words for people, never the stored text itself.

    The stored text (an endpoint's answer, an exception's message) is for operators, in the
    admin, the API's `delivery.last_error` and the log: it can hold anything the endpoint or a
    library wrote, and it means nothing to a manager.
    """
    if status_code in (401, 403):
        return (
            f"Google refused the credentials Approver sends it with (HTTP {status_code}); an "
            "administrator needs to check Approver's access to the workflow."
        )
    if status_code in (404, 410):
        return f"The workflow's execution no longer waits for it (HTTP {status_code})."
    if status_code == 429:
        return "The workflow's endpoint asked Approver to wait (HTTP 429)."
    if status_code is not None and status_code >= 500:
        return f"The workflow's endpoint answered {status_code}, an error on its side."
    if status_code is not None:
        return f"The workflow's endpoint refused it (HTTP {status_code})."
    kind = error.split(":", 1)[0].strip()
    if kind == "timed out":
        return "The workflow's endpoint did not answer in time."
    if kind in UNREACHABLE_ERRORS:
        return "Approver could not reach the workflow's endpoint."
    if kind in CREDENTIALS_ERRORS:
        return (
            "Approver could not get the Google credentials it sends the callback with; an "
            "administrator can see why in the service's log."
        )
    return "It could not be sent; an administrator can see why in the service's log."


def failure_words(event: "AuditEvent") -> str:
    """What went wrong in an audit event, in words for people ("" for events that are no
    failure); the event's payload keeps the stored text for the admin."""
    if event.kind == AuditEvent.Kind.CALLBACK_FAILED:
        return callback_problem(event.payload.get("status_code"), event.payload.get("error", ""))
    if event.kind in (AuditEvent.Kind.NOTIFY_FAILED, AuditEvent.Kind.OUTCOME_MAIL_FAILED):
        return "The e-mail could not be sent; an administrator can see why in the service's log."
    return ""


def open_q() -> models.Q:
    """Pending and within its time: the SQL form of `ApprovalRequest.is_open`."""
    return models.Q(status=Status.PENDING, expires_at__gt=timezone.now())


def overdue_q() -> models.Q:
    """Pending past its time, expiry not recorded yet: the SQL form of `is_expired`."""
    return models.Q(status=Status.PENDING, expires_at__lte=timezone.now())


def expired_q() -> models.Q:
    """Shown as expired: recorded so, or overdue (`effective_status == "expired"`)."""
    return models.Q(status=Status.EXPIRED) | overdue_q()


class ApprovalRequest(models.Model):
    """One pending decision that a workflow execution waits for, and its callback's delivery."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    callback_url = models.URLField(max_length=MAX_CALLBACK_URL, unique=True)
    title = models.CharField(max_length=MAX_TITLE)
    requester_email = models.EmailField(
        max_length=MAX_EMAIL, help_text="Stored lower-case; never allowed to decide."
    )
    requester_key = models.CharField(
        max_length=MAX_EMAIL,
        help_text="The requester as a person (`approvals.emails.person`): whom the rule "
        "'never your own request' compares.",
    )
    amount = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, null=True, blank=True
    )
    currency = models.CharField(max_length=3, blank=True)
    description = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(max_length=MAX_EXTERNAL_ID, blank=True, db_index=True)
    registered_by = models.CharField(
        max_length=MAX_EMAIL, help_text="The API caller: a service account e-mail or 'api-token'."
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=1, help_text="Approvals by different people needed; the first rejection ends it."
    )
    inputs = models.JSONField(
        default=list,
        blank=True,
        help_text="What deciders fill in when deciding (`approvals.inputs`), as registered.",
    )

    allow_changes_requested = models.BooleanField(
        default=False, help_text="Deciders may send it back for changes (a new round follows)."
    )

    status = models.CharField(max_length=MAX_STATUS, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    # Notices and policies, run by `send_notifications` (see `approvals.notify.reminders`).
    escalates_at = models.DateTimeField(
        null=True, blank=True, help_text="From then on, the escalation targets may decide too."
    )
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the escalation targets were told."
    )
    next_reminder_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the deciders are next e-mailed: the first notice, then each reminder.",
    )
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the deciders were first e-mailed about it."
    )
    notify_requester = models.BooleanField(
        default=True, help_text="Whether the requester is e-mailed the outcome when it closes."
    )
    requester_notice_due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the requester's outcome mail is due (set as it closes; empty once sent).",
    )

    delivery_status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.NONE
    )
    delivery_attempts = models.PositiveIntegerField(default=0)
    delivery_client_errors = models.PositiveSmallIntegerField(
        default=0, help_text="400, 401 or 403 answers in a row; too many and delivery fails."
    )
    delivery_last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivery_last_error = models.TextField(blank=True)
    delivery_next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        permissions = [
            ("decide_approvalrequest", "Can decide approval requests"),
            ("retry_callback_approvalrequest", "Can retry failed callbacks"),
            ("reassign_approvalrequest", "Can reassign any open approval request"),
        ]
        indexes = [
            # The inbox: pending requests by age, by time left, by amount; decided ones by when.
            models.Index(fields=["status", "created_at"], name="approval_status_created"),
            models.Index(fields=["status", "expires_at"], name="approval_status_expires"),
            models.Index(fields=["status", "amount"], name="approval_status_amount"),
            models.Index(fields=["status", "closed_at"], name="approval_status_closed"),
            models.Index(fields=["requester_key", "status"], name="approval_requester_key"),
            # Rounds: one caller's requests for one external id (`permissions.rounds_of`).
            models.Index(
                fields=["registered_by", "external_id", "created_at"],
                name="approval_rounds",
                condition=~models.Q(external_id=""),
            ),
            # The reminder pass: open requests whose reminder or escalation is due.
            models.Index(
                fields=["next_reminder_at"],
                name="approval_reminder_due",
                condition=models.Q(status=Status.PENDING, next_reminder_at__isnull=False),
            ),
            # The requester's outcome mail, due once the request closed (`notify.outcome`).
            models.Index(
                fields=["requester_notice_due_at"],
                name="approval_requester_notice_due",
                condition=models.Q(requester_notice_due_at__isnull=False),
            ),
            models.Index(
                fields=["escalates_at"],
                name="approval_escalation_due",
                condition=models.Q(status=Status.PENDING, escalated_at__isnull=True),
            ),
            # The delivery pass: callbacks that are due, soonest first.
            models.Index(
                fields=["delivery_next_attempt_at"],
                name="approval_delivery_due",
                condition=models.Q(delivery_status__in=ACTIVE_DELIVERY_STATES),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__isnull=True) | models.Q(amount__gte=0),
                name="approval_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(required_approvals__gte=1), name="approval_needs_an_approval"
            ),
            # A request nobody is the requester of would let its requester decide it.
            models.CheckConstraint(
                condition=~models.Q(requester_key=""), name="approval_has_a_requester_key"
            ),
        ]

    def __str__(self):
        return self.title

    @property
    def is_expired(self) -> bool:
        """Past its expiry while still pending: nobody may decide it any more."""
        return self.status == Status.PENDING and self.expires_at <= timezone.now()

    @property
    def effective_status(self) -> str:
        """The status as people and callers see it: expiry shows at once, without a sweeper."""
        return Status.EXPIRED if self.is_expired else self.status

    def get_effective_status_display(self) -> str:
        return Status(self.effective_status).label

    @property
    def is_open(self) -> bool:
        return self.effective_status == Status.PENDING

    @property
    def delivery_summary(self) -> str:
        """The callback's state in words, for the request page and the admin."""
        return DELIVERY_WORDS[DeliveryStatus(self.delivery_status)].summary

    @property
    def delivery_failed(self) -> bool:
        return self.delivery_status in (DeliveryStatus.RETRYING, DeliveryStatus.FAILED)

    @property
    def delivery_problem(self) -> str:
        """Why the last callback attempt failed, in words for people ("" when none did)."""
        if not self.delivery_failed:
            return ""
        return callback_problem(self.delivery_last_status_code, self.delivery_last_error)

    @property
    def is_escalated(self) -> bool:
        """Past its escalation time: the escalation targets may decide too (told or not yet)."""
        return self.escalates_at is not None and self.escalates_at <= timezone.now()

    @property
    def final_decision(self):
        """The decision that closed the request, if any: the last approval or the rejection."""
        decisions = [d for d in self.decisions.all() if d.outcome == self.status]
        return decisions[-1] if decisions else None

    def named(self, role: str) -> list[str]:
        """Who the request names in `role`, in words: e-mails, then "group finance"."""
        chosen = [a for a in self.assignees.all() if a.role == role]
        return [a.email for a in chosen if a.email] + [
            f"group {a.group}" for a in chosen if a.group
        ]

    @property
    def outcomes(self) -> list[str]:
        """The decisions a decider may give it: approve and reject, and send back when its
        registration allowed it (`services.outcome_problem` refuses the others)."""
        allowed = [Outcome.APPROVED, Outcome.REJECTED]
        if self.allow_changes_requested:
            allowed.append(Outcome.CHANGES_REQUESTED)
        return allowed

    @property
    def may_be_sent_back(self) -> bool:
        return Outcome.CHANGES_REQUESTED in self.outcomes

    @property
    def approvals_given(self) -> int:
        return sum(d.outcome == Outcome.APPROVED for d in self.decisions.all())

    @property
    def approvals_missing(self) -> int:
        """Approvals still needed while the request is open (0 once closed)."""
        if not self.is_open:
            return 0
        return max(0, self.required_approvals - self.approvals_given)


class Assignee(models.Model):
    """A person or a Django group named by the caller, to decide or to escalate to.

    Assignees (role "assignee"): when a request names any, only they (a group: any member) may
    decide it. Escalation targets (role "escalation") may decide too once the request's
    `escalates_at` has passed. Groups are kept by name, so a deleted or renamed group lets nobody
    decide rather than everybody.

    A reassignment (`services.reassign`) keeps the rows and changes their roles: the person who
    handed the request on gets a "handed on" row (their assignee row, or a new one), which the
    rules read as "may no longer decide"; the group rows it named are "superseded" when the new
    person takes a group member's place (or the place of anyone, for a request that named
    nobody); the new person gets an assignee row with `handed_by` set, and `notice_due_at` until
    `send_notifications` has told them.
    """

    class Role(models.TextChoices):
        ASSIGNEE = "assignee", "Assignee"
        ESCALATION = "escalation", "Escalation"
        HANDED_ON = "handed_on", "Handed on"
        SUPERSEDED = "superseded", "Superseded"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="assignees")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ASSIGNEE)
    email = models.EmailField(
        max_length=MAX_EMAIL, blank=True, help_text="Stored lower-case; empty for a group."
    )
    email_key = models.CharField(
        max_length=MAX_EMAIL,
        blank=True,
        help_text="The mailbox (`approvals.emails.canonical`) that decides; empty for a group.",
    )
    group = models.CharField(
        max_length=MAX_GROUP_NAME, blank=True, help_text="A Django group's name."
    )
    handed_by = models.CharField(
        max_length=MAX_EMAIL,
        blank=True,
        help_text="Who handed the request to this person (a reassignment); empty otherwise.",
    )
    handed_note = models.CharField(
        max_length=MAX_NOTE, blank=True, help_text="Why it was handed to them (optional)."
    )
    notice_due_at = models.DateTimeField(
        null=True, blank=True, help_text="When the person handed the request is to be e-mailed."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request", "role", "email", "group"], name="assignee_once_per_request"
            ),
            models.CheckConstraint(
                condition=(models.Q(email="") & ~models.Q(group=""))
                | (~models.Q(email="") & models.Q(group="")),
                name="assignee_person_or_group",
            ),
            models.CheckConstraint(
                condition=models.Q(email="", email_key="")
                | (~models.Q(email="") & ~models.Q(email_key="")),
                name="assignee_email_has_a_key",
            ),
        ]
        indexes = [
            models.Index(fields=["email_key", "request"], name="assignee_email_key"),
            models.Index(fields=["group", "request"], name="assignee_group"),
            # The reassignment notices that are due (`notify.reminders.tell_handed_due`).
            models.Index(
                fields=["notice_due_at"],
                name="assignee_notice_due",
                condition=models.Q(notice_due_at__isnull=False),
            ),
        ]

    def __str__(self):
        return self.email or f"group {self.group}"


class Decision(models.Model):
    """One person's approval or rejection, a row of its own so a request can collect several."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=MAX_STATUS, choices=Outcome.choices)
    decided_by = models.EmailField(
        max_length=MAX_EMAIL,
        help_text="The person who decided, by their mailbox (`approvals.emails.canonical`).",
    )
    on_behalf_of = models.EmailField(
        max_length=MAX_EMAIL,
        blank=True,
        help_text="The person the decider stood in for (a delegation), if any.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    inputs = models.JSONField(
        default=dict, blank=True, help_text="The values given for the inputs this decision asked."
    )
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at", "pk"]
        constraints = [
            # One person, one say in a request: as themselves or for someone else, not both.
            models.UniqueConstraint(
                fields=["request", "decided_by"], name="decision_once_per_person"
            ),
            models.UniqueConstraint(
                fields=["request", "on_behalf_of"],
                condition=~models.Q(on_behalf_of=""),
                name="decision_once_per_delegator",
            ),
        ]

    def __str__(self):
        text = f"{self.get_outcome_display()} by {self.decided_by}"
        return f"{text} on behalf of {self.on_behalf_of}" if self.on_behalf_of else text

    @property
    def outcome_done(self) -> str:
        """The outcome in words, as done: "approved", "rejected", "sent back"."""
        return OUTCOME_DONE[Outcome(self.outcome)]


def active_delegation_q(moment=None) -> models.Q:
    """Delegations in force at `moment` (now by default)."""
    moment = moment or timezone.now()
    return models.Q(starts_at__lte=moment, ends_at__gt=moment)


class Delegation(models.Model):
    """ "Out of office": from `starts_at` to `ends_at`, the delegate may decide what the delegator
    may decide, on the delegator's behalf. It does not chain, and never lets the delegate decide
    a request they asked for (see `approvals.permissions`). Ending one early sets `ends_at`; rows
    are kept, so the record says who could act for whom and when."""

    delegator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_received"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(max_length=MAX_NOTE, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ended_early_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(delegator=models.F("delegate")), name="delegation_not_to_self"
            ),
            # Equal only for one withdrawn before it began: an empty window, never in force.
            models.CheckConstraint(
                condition=models.Q(ends_at__gte=models.F("starts_at")),
                name="delegation_ends_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["delegate", "ends_at"], name="delegation_delegate"),
            models.Index(fields=["delegator", "ends_at"], name="delegation_delegator"),
        ]

    def __str__(self):
        return f"{self.delegate} for {self.delegator}"

    @property
    def is_active(self) -> bool:
        return self.starts_at <= timezone.now() < self.ends_at


class AuditEventManager(models.Manager):
    def bulk_create(self, *args, **kwargs):
        raise ValueError("Audit events are chained: create them one by one, or with append_all.")

    def append_all(self, events: list["AuditEvent"]) -> list["AuditEvent"]:
        """Append `events`, of one request or many, each to the end of its request's chain, in
        the caller's transaction and in their order: what `save` does for one, in a few queries
        for a pass's hundreds (their requests locked together, in id order, so two passes that
        lock some of the same never wait for each other in a circle)."""
        if not events:
            return []
        with transaction.atomic(savepoint=False):
            heads = self._chain_heads({event.request_id for event in events})
            for event in events:
                key = str(event.request_id)  # a UUID or its text: one key either way
                if not event._state.adding:
                    raise ValueError("Audit events are append-only; they cannot be changed.")
                # A request's first event is its registration (see `_chain_head`).
                if event.kind == AuditEvent.Kind.REGISTERED:
                    event.previous_hash = audit.GENESIS
                else:
                    event.previous_hash = heads.get(key, audit.GENESIS)
                event.hash = audit.digest(event)
                heads[key] = event.hash
            # One INSERT numbers its rows in order, so each chain's last event has the highest id.
            return super().bulk_create(events)

    def _chain_heads(self, request_ids: set) -> dict:
        """The hash of each request's latest event, by the request id's text, read under the
        requests' row locks."""
        ids = sorted(request_ids, key=str)
        list(
            ApprovalRequest.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values("pk")
        )
        latest = (
            self.filter(request_id__in=ids).values("request_id").annotate(last=models.Max("pk"))
        )
        last_ids = [row["last"] for row in latest]
        rows = self.filter(pk__in=last_ids).values_list("request_id", "hash")
        return {str(request_id): hash_ for request_id, hash_ in rows}


class AuditEvent(models.Model):
    """An append-only record of something that happened to a request.

    Each event is chained to the one before it of its request (`approvals.audit`); the database
    refuses to change or delete one (the triggers of migration 0011).
    """

    class Kind(models.TextChoices):
        REGISTERED = "registered", "Registered"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CHANGES_REQUESTED = "changes_requested", "Sent back"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        CALLBACK_SENT = "callback_sent", "Callback delivered"
        CALLBACK_FAILED = "callback_failed", "Callback failed"
        CALLBACK_RETRY = "callback_retry", "Callback retry requested"
        NOTIFIED = "notified", "Deciders told"
        NOTIFY_FAILED = "notify_failed", "Notice to deciders failed"
        REMINDED = "reminded", "Deciders reminded"
        ESCALATED = "escalated", "Escalated"
        REASSIGNED = "reassigned", "Reassigned"
        OUTCOME_MAILED = "outcome_mailed", "Requester told the outcome"
        OUTCOME_MAIL_FAILED = "outcome_mail_failed", "Notice to requester failed"

    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.PROTECT, related_name="audit_events"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.CharField(
        max_length=MAX_EMAIL, help_text="Who did it: a person, a caller or 'system'."
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(
        max_length=64, editable=False, help_text="The hash of the event before it, of its request."
    )
    hash = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of its content and `previous_hash`."
    )

    objects = AuditEventManager()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["request", "at"], name="audit_request_at")]
        constraints = [
            # One successor per event: a chain never forks, whatever the code that appends.
            models.UniqueConstraint(fields=["request", "previous_hash"], name="audit_chain_link"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.actor}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Audit events are append-only; they cannot be changed.")
        # No savepoint: an event that cannot be stored must undo the change it records.
        with transaction.atomic(savepoint=False):
            self.previous_hash = self._chain_head()
            self.hash = audit.digest(self)
            super().save(*args, **kwargs)

    def _chain_head(self) -> str:
        """The hash to link to: the request's latest event, read under the request's row lock so
        that two writers append one after the other. (SQLite has no row locks but lets one
        writer in at a time; the unique link refuses a fork on either database.)"""
        if self.kind == self.Kind.REGISTERED:
            # Created in the request's own transaction (`services.register`): nothing before it.
            return audit.GENESIS
        list(ApprovalRequest.objects.select_for_update().filter(pk=self.request_id).values("pk"))
        latest = AuditEvent.objects.filter(request_id=self.request_id).order_by("-pk")
        return latest.values_list("hash", flat=True).first() or audit.GENESIS

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only; they cannot be deleted.")


class IapIdentity(models.Model):
    """A person who signs in through Identity-Aware Proxy, recognised by the assertion's subject
    (see `identity.iap`). The subject never changes for a Google account; the e-mail may, so it
    is kept current here and on the user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="iap_identity"
    )
    subject = models.CharField(
        max_length=255,
        unique=True,
        help_text="The assertion's `sub`, e.g. accounts.google.com:1234.",
    )
    email = models.EmailField(
        max_length=MAX_EMAIL, help_text="The e-mail the latest assertion named."
    )
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "IAP identity"
        verbose_name_plural = "IAP identities"

    def __str__(self):
        return f"{self.email} ({self.subject})"


class PersonalToken(models.Model):
    """A person's own credential for the API: list what awaits them, read, decide (contract:
    "Deciding through the API"). Issued and checked by `approvals.identity.tokens`; only the
    secret's SHA-256 digest is kept, and `prefix`, the public part, names it in lists and logs."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personal_tokens"
    )
    name = models.CharField(max_length=100, help_text="What its owner uses it for.")
    prefix = models.CharField(
        max_length=16, unique=True, help_text="The token's public start: names it, reveals nothing."
    )
    digest = models.CharField(
        max_length=64, unique=True, editable=False, help_text="SHA-256 of the whole token, hex."
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="To the minute: a use within a minute is not written."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="personal_token_expires_after_creation",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def state(self) -> str:
        """Whether the API accepts it now: "active"; else "revoked" or "expired"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"


class Channel(models.TextChoices):
    """Where a notice can reach a person (`approvals.notify.channels`)."""

    EMAIL = "email", "E-mail"
    SLACK = "slack", "Slack"
    GOOGLE_CHAT = "google_chat", "Google Chat"


class Notice(models.Model):
    """One message to one person on one channel: a row of the notification outbox.

    The transaction that makes a notice due (a registration's first notice falling due, a
    reminder point, an escalation, a reassignment, a request closing, a delegation, a decision
    that changes what a chat message should say) writes one row per person and channel;
    `manage.py send_notifications` sends what is due (`approvals.notify.outbox`), each row once,
    and a row whose channel failed is due again later, for that channel only. `ref` is the
    channel's handle of the message it sent (a Slack channel and `ts`, a Chat message name), so
    that a later notice can update it in place.
    """

    class Purpose(models.TextChoices):
        NEW = "new", "New request"  # just registered: to everyone who may decide it
        REMINDER = "reminder", "Reminder"  # still waiting: to everyone who may decide it now
        ESCALATION = "escalation", "Escalation"  # to the escalation targets, who may now decide
        REASSIGNED = "reassigned", "Handed to them"  # to the person a reassignment named
        OUTCOME = "outcome", "Outcome"  # to the requester, once the request closed
        DELEGATION = "delegation", "Named a delegate"  # to a new delegate (no request)
        UPDATE = "update", "Message updated"  # a chat message of the request, after a decision

    # The notices that ask their person to decide: dropped once the request closed.
    FOR_DECIDERS = frozenset(
        {Purpose.NEW, Purpose.REMINDER, Purpose.ESCALATION, Purpose.REASSIGNED}
    )

    class State(models.TextChoices):
        DUE = "due", "Due"  # waiting for its (next) attempt
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # given up after failures
        DROPPED = "dropped", "Not sent"  # no longer needed, or the person is not on the channel

    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, null=True, blank=True, related_name="notices"
    )
    delegation = models.ForeignKey(
        Delegation, on_delete=models.CASCADE, null=True, blank=True, related_name="notices"
    )
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    channel = models.CharField(max_length=11, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The person's account (a requester may have none).",
    )
    email = models.CharField(max_length=MAX_EMAIL, help_text="The person's address, as known.")
    email_key = models.CharField(
        max_length=MAX_EMAIL, help_text="The person (`approvals.emails.canonical`)."
    )
    on_behalf_of = models.CharField(
        max_length=MAX_EMAIL, blank=True, help_text="Whom they stand in for, as a delegate."
    )
    payload = models.JSONField(
        default=dict, blank=True, help_text="What the occasion adds (a reminder's point, ...)."
    )
    updates = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="updated_by",
        help_text="The notice whose message this one updates in place.",
    )
    state = models.CharField(max_length=7, choices=State.choices, default=State.DUE)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="When its next attempt is due; empty once settled."
    )
    claim = models.UUIDField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    ref = models.JSONField(
        default=dict, blank=True, help_text="The channel's handle of the message sent."
    )

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["due_at"], name="notice_due", condition=models.Q(state="due")),
            models.Index(fields=["request", "channel"], name="notice_request_channel"),
            models.Index(fields=["claim"], name="notice_claim", condition=~models.Q(claim=None)),
        ]

    def __str__(self):
        return f"{self.get_purpose_display()} to {self.email} by {self.get_channel_display()}"


class ChannelPreference(models.Model):
    """The channels a person turned off on their settings page; every channel that reaches them
    is on otherwise. Kept by mailbox, so it holds for every account with that address."""

    email_key = models.CharField(max_length=MAX_EMAIL, unique=True)
    off = models.JSONField(default=list, blank=True, help_text="Channel names turned off.")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.email_key}: off {', '.join(self.off) or 'none'}"


class ChatAccount(models.Model):
    """A person's account on a chat platform and the conversation the app writes to them in:
    learned from Slack's `users.lookupByEmail` and `conversations.open`, or from Google Chat's
    `ADDED_TO_SPACE` event in a direct message (the only way an app learns a Chat space)."""

    channel = models.CharField(max_length=11, choices=Channel.choices)
    email_key = models.CharField(max_length=MAX_EMAIL, help_text="The person's mailbox.")
    user_id = models.CharField(max_length=200, help_text="Slack `U...`; Chat `users/...`.")
    conversation = models.CharField(
        max_length=200, help_text="Slack's direct message `D...`; Chat's `spaces/...`."
    )
    learned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "email_key"], name="chat_account_once"),
        ]
        indexes = [models.Index(fields=["channel", "user_id"], name="chat_account_user")]

    def __str__(self):
        return f"{self.email_key} on {self.get_channel_display()}"
