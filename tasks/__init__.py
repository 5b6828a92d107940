"""recpipe's work, grouped by stage: pure functions over paths, frames and matrices.

Installed as `recpipe.tasks`; the folder sits at the repository root for readers.
"""

if __name__ != "recpipe.tasks":  # e.g. `import tasks` from the repository root
    raise ImportError(
        f"this folder is the package recpipe.tasks, not a top-level {__name__!r}: "
        "install the project (`make install`) and import recpipe.tasks"
    )
