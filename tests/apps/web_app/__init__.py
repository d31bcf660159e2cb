"""
A servey app for the web tests: two hosted data stores on the backend named by
WEB_APP_BACKEND ("directory", or "chunk" for a ChunkDataStore over a SQLite file).

- private_files: users read, upload and delete only under "{subject_id}/"; "root" scope: all.
- shared_files: as private_files, but everyone (anonymous too) may read and list.

Environment: WEB_APP_ROOT (a writable folder), WEB_APP_SECRET (>= 32 bytes),
WEB_APP_BACKEND, WEB_APP_BASE_URL (the server's origin, for absolute form and URL links).
"""
