"""``python -m voiceprint ...`` is the ``voiceprint`` command."""
from voiceprint.cli import main

main()
