"""Old import path of the atomic writers and run-directory staging, now in `llc.runs.layout`.

Kept only so that llc/executors (manifest.py, modal_executor.py) keep importing from here while
they are being refactored elsewhere; new code imports `llc.runs.layout`.
"""

from llc.runs.layout import (
    TMP_DIR,
    new_staging_dir,
    publish_dir,
    remove_stale_staging,
    write_json_atomic,
    write_text_atomic,
)

__all__ = ["TMP_DIR", "new_staging_dir", "publish_dir", "remove_stale_staging", "write_json_atomic", "write_text_atomic"]
