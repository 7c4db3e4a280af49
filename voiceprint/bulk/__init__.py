"""Bulk ingestion: embed many files on a pool of workers, write through the services.

A corpus of hundreds of thousands of clips (CN-Celeb: 650k utterances) takes
days to embed on one machine. Here only the *embedding* moves out: workers
(in this process, or Ray actors on a cluster) each load the encoder once,
decode, check and embed the clips they are sent and return the vectors; the
*driver* (the process running the command) writes every result through the
same services as the HTTP API - :class:`~voiceprint.services.enrollment.EnrollmentService`
and :class:`~voiceprint.services.sounds.SoundService` - so rows, vectors and
files stay one unit of work, the tenant's access rules apply, and enrollment's
rules (duplicates, voice mismatch, consistency) judge every clip.

* :mod:`.worker` - what a worker does with a batch (check, embed) and the
  request/result records;
* :mod:`.engines` - where workers run: ``local`` (in-process) or ``ray``;
* :mod:`.pipeline` - keeps the workers busy ahead of the writer, in the
  writer's order, and isolates a clip that kills its worker;
* :mod:`.precomputed` - hands the workers' vectors to the services;
* :mod:`.plan` - what to enroll: a folder tree or a manifest CSV;
* :mod:`.enroll` - ``voiceprint bulk enroll``;
* :mod:`.sounds` - ``voiceprint sounds load --engine ray``.
"""
