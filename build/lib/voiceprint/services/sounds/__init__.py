"""Similar-sound search: libraries of arbitrary audio searched by example.

* :mod:`.formats` - names, tags, formats (pure functions);
* :mod:`.catalog` - a tenant's libraries (create, list, drop, load progress);
* :mod:`.service` - insert, search, read and delete sounds;
* :mod:`.bulk` - bulk loading from local folders (the CLI).

Consistency with Milvus and the files is :mod:`voiceprint.services.reconcile`.
"""
from voiceprint.services.sounds.bulk import FileOutcome, LoadReport, find_audio_files, load_paths
from voiceprint.services.sounds.catalog import Library, LibraryCatalog, collection_name
from voiceprint.services.sounds.formats import (COSINE, DEFAULT_LIBRARY, LIBRARY_NAME, MAX_TAGS,
                                                TOP_K_MAX, check_library_name, check_tags,
                                                parse_tag_pairs)
from voiceprint.services.sounds.service import (InsertResult, ItemOutcome, SearchResult,
                                                SoundService)

__all__ = ["COSINE", "DEFAULT_LIBRARY", "LIBRARY_NAME", "MAX_TAGS", "TOP_K_MAX", "FileOutcome",
           "InsertResult", "ItemOutcome", "Library", "LibraryCatalog", "LoadReport",
           "SearchResult", "SoundService", "check_library_name", "check_tags", "collection_name",
           "find_audio_files", "load_paths", "parse_tag_pairs"]
