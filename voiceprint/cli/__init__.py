"""The ``voiceprint`` command line (see :mod:`voiceprint.cli.base` for what commands share).

Exit status: 0 success, 1 an error (message on stderr), 2 a usage error,
3 ``verify`` rejected the claim.
"""
from voiceprint.cli import (bulk, calibrate, db, diarize, keys, serve,  # noqa: F401  (commands)
                            speakers)
from voiceprint.cli.base import main
from voiceprint.cli.sound_commands import sounds

main.add_command(sounds)

__all__ = ["main"]
