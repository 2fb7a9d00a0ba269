"""Serve the local stand-in for the Workflows callback endpoint and print what arrives."""

import json

from django.core.management.base import BaseCommand

from approvals.callback_receiver import CallbackReceiver


class Command(BaseCommand):
    help = "Receive callbacks locally, as a waiting Cloud Workflows execution would (make run)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765)

    def handle(self, *args, port=8765, **options):
        def echo(received):
            execution = received.path.split("/executions/")[-1].split("/")[0]
            self.stdout.write(
                self.style.SUCCESS(f"\n[workflow {execution}] callback received:\n")
                + json.dumps(received.body, indent=2)
                + "\n"
            )
            self.stdout.flush()

        receiver = CallbackReceiver(port=port, echo=echo)
        self.stdout.write(f"Callback stand-in listening on {receiver.base_url}/v1/...")
        try:
            receiver.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            receiver.server_close()
