"""Shared bits of the CLI contract: JSON on stdout, errors on stderr with exit 1."""
import json

from django.core.management.base import CommandError


def emit(command, data: dict, as_json: bool, text: str | None = None) -> None:
    if as_json:
        command.stdout.write(json.dumps(data, indent=1, default=str))
    else:
        command.stdout.write(text if text is not None else json.dumps(data, indent=1, default=str))


def fail(message: str) -> CommandError:
    return CommandError(message, returncode=1)
