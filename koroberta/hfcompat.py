"""Import transformers robustly.

The pinned environment carries ``torchaudio==2.11.0`` (a fairseq dependency) next to ``torch==2.13.0+cpu``; its
compiled extension does not load against that torch (``libc10_cuda.so: cannot open shared object file``).
transformers imports torchaudio from ``audio_utils`` whenever the package is *installed*, so merely importing
``RobertaForMaskedLM`` raises ``OSError``. We never use audio, so when (and only when) torchaudio fails to import we
tell transformers it is unavailable before its model modules load.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from types import ModuleType

log = logging.getLogger(__name__)
_checked = False


def _torchaudio_loads() -> bool:
    if importlib.util.find_spec("torchaudio") is None:
        return True  # not installed: transformers will not try to import it
    try:
        import torchaudio  # noqa: F401
        return True
    except Exception as e:  # OSError from the C extension, ImportError, ...
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        log.debug("torchaudio is installed but does not load (%s); hiding it from transformers", e)
        return False


def import_transformers() -> ModuleType:
    """``import transformers`` with the torchaudio workaround applied once per process."""
    global _checked
    if not _checked:
        if not _torchaudio_loads():
            import transformers.utils as tu
            import transformers.utils.import_utils as iu

            def _no() -> bool:
                return False

            tu.is_torchaudio_available = _no
            iu.is_torchaudio_available = _no
        _checked = True
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # per-call bars clutter the stage logs
    return transformers
