"""The run's date: ``run.date``, else SOURCE_DATE_EPOCH's day, else today's (UTC)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from reportgen.config.loading import validate
from reportgen.config.schema import Config
from reportgen.core.errors import ConfigError


def source_date_epoch(environ: Mapping[str, str]) -> int | None:
    """Return ``SOURCE_DATE_EPOCH`` as seconds since 1970, or None when it is unset or empty."""
    raw = environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    try:
        epoch = int(raw)
        dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    except (ValueError, OverflowError, OSError) as e:
        raise ConfigError(
            f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970 (got {raw!r})"
        ) from e
    return epoch


def run_day(environ: Mapping[str, str], now: dt.datetime) -> str:
    """Return the default ``run.date``: SOURCE_DATE_EPOCH's day if set, else ``now``'s (UTC)."""
    epoch = source_date_epoch(environ)
    moment = now if epoch is None else dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.astimezone(dt.UTC).date().isoformat()


def with_date(
    config: Config,
    day: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> Config:
    """Return ``config`` with a ``run.date`` where it has none.

    The date is ``day`` when given, else :func:`run_day` of ``environ``
    (default ``os.environ``) and ``now`` (default the clock).
    """
    if config.run.date is not None:
        return config
    if day is None:
        day = run_day(os.environ if environ is None else environ, now or dt.datetime.now(dt.UTC))
    run = config.run.model_copy(update={"date": day})
    return validate({**config.model_dump(mode="json"), "run": run.model_dump(mode="json")})
