"""The ``.npz`` files vy-nexus writes (route models, embedding caches): what reading a damaged one raises.

Besides ``OSError``/``ValueError``/``KeyError``, a truncated archive raises ``zipfile.BadZipFile`` and an empty file
``EOFError`` (which click would turn into a bare "Aborted."), and a file that is not an archive at all makes numpy
talk about pickled data; readers catch all of these and say the file is damaged. They open the file themselves and
hand numpy the handle: ``np.load(path)`` leaves its file open when the archive is bad."""

from __future__ import annotations

import zipfile

# json.JSONDecodeError, raised when the archive's metadata is not JSON, is a ValueError.
DAMAGED_NPZ_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
