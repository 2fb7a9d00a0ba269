"""How the periodic jobs (`deliver_callbacks`, `send_notifications`) run their passes: once per
invocation (a Cloud Run job on Cloud Scheduler), or with --loop again and again (a local run)."""

import logging
import time
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

logger = logging.getLogger(__name__)


def run(one_pass: Callable[[], None], *, job: str, loop: bool, pause: float) -> None:
    """Run `one_pass` once, or with `loop` again and again, `pause` seconds apart.

    A pass that fails (SQLite locked by another process for longer than its timeout, PostgreSQL
    away) is logged and loses nothing: what it did not do stays due. With `loop` the job goes on
    with the next pass, so a local run never dies of it; a single run (a Cloud Run job) exits 1,
    so the execution shows as failed, and the scheduler's next run goes on.
    """
    while True:
        close_old_connections()  # a connection that broke in the last pass, or grew old
        try:
            one_pass()
        except Exception as error:
            logger.exception(
                "%s: the pass failed (%s: %s); %s",
                job,
                type(error).__name__,
                error,
                f"the next pass is in {pause:g} s" if loop else "the next run tries again",
            )
            if not loop:
                raise CommandError(f"{job}: the pass failed: {error}") from error
        if not loop:
            return
        time.sleep(pause)


class PassCommand(BaseCommand):
    """A periodic job's command: `--loop` and `--pause`, and `run` around its `one_pass`.

    Subclasses do the work in `one_pass`, which answers the line the job prints (at verbosity 1
    and up), and set `pause`, the default seconds between passes with `--loop`.
    """

    pause = 5.0

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", action="store_true", help="Keep running, pausing between passes."
        )
        parser.add_argument(
            "--pause", type=float, default=self.pause, help="Seconds between passes with --loop."
        )

    def one_pass(self) -> str:
        raise NotImplementedError

    def handle(self, *args, loop=False, pause=None, verbosity=1, **options):
        def one_pass():
            summary = self.one_pass()
            if verbosity:
                self.stdout.write(summary)

        job = type(self).__module__.rsplit(".", 1)[-1]  # the command's name, as Django finds it
        run(one_pass, job=job, loop=loop, pause=self.pause if pause is None else pause)
