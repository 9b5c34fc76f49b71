from datetime import date

from django.core.management.base import BaseCommand, CommandError

from detection import backtests
from detection.models import Backtest
from modelops.ml.artifact import ArtifactError
from modelops.models import ModelVersion


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Score the transactions stored in a window with a version, beside the decisions stored for them "
        "(which are left as they are), and print the comparison. Resumes an unfinished backtest with --resume."
    )

    def add_arguments(self, parser):
        parser.add_argument("version", type=int, nargs="?", help="Version number")
        parser.add_argument("--from", dest="first", help="First day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="last", help="Last day, included")
        parser.add_argument("--resume", type=int, metavar="ID", help="Go on with an unfinished backtest")

    def handle(self, *args, version, first, last, resume, **options):
        if resume is not None:
            backtest = Backtest.objects.filter(pk=resume).first()
            if backtest is None:
                raise CommandError(f"no backtest {resume}")
        else:
            if version is None or not first or not last:
                raise CommandError("give VERSION --from DATE --to DATE, or --resume ID")
            found = ModelVersion.objects.filter(version=version).first()
            if found is None:
                raise CommandError(f"no model version {version}")
            since, until = backtests.window(_day(first), _day(last))
            if since >= until:
                raise CommandError("--to is before --from")
            backtest = backtests.create(version=found, since=since, until=until, requested_by="command")
        days = f"{backtest.since:%Y-%m-%d} up to {backtest.until:%Y-%m-%d}"
        self.stdout.write(f"backtest {backtest.pk}: v{backtest.version.version}, {days}")

        def progress(done: Backtest) -> None:
            self.stdout.write(f"  {done.rows_done:,} of {done.rows_total:,} transactions ({done.progress:.0%})")

        try:
            backtest = backtests.run(backtest.pk, progress=progress)
        except ArtifactError as exc:
            raise CommandError(f"backtest {backtest.pk} failed: {exc}") from None
        figures = backtest.figures
        if backtest.status != Backtest.Status.DONE:
            raise CommandError(f"backtest {backtest.pk} is {backtest.status}")
        self.stdout.write(_summary(figures))


def _summary(figures: dict) -> str:
    lines = [
        f"{figures['transactions']:,} transactions; agreement with the stored decisions "
        + (f"{figures['agreement']:.2%}" if figures["agreement"] is not None else "n/a"),
        f"alerts: stored {figures['stored_alerts']:,}, backtest {figures['alerts']:,}",
        f"labelled: {figures['labelled']:,} ({figures['labelled_frauds']:,} frauds)",
    ]
    for side in ("stored", "challenger"):
        found = figures[side]
        if found:
            known = [name for name in ("precision", "recall", "f1", "auprc") if found[name] is not None]
            shown = ", ".join(f"{name} {found[name]:.4f}" for name in known)
            lines.append(f"{'backtest' if side == 'challenger' else 'stored'}: {shown}")
    return "\n".join(lines)
