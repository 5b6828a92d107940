"""recpipe's Prefect flows: they wire tasks together and hold no logic of their own.

Installed as `recpipe.flows`; deployments point at entrypoints like
`recpipe.flows.train:train_flow`.
"""

if __name__ != "recpipe.flows":  # e.g. `import flows` from the repository root
    raise ImportError(
        f"this folder is the package recpipe.flows, not a top-level {__name__!r}: "
        "install the project (`make install`) and import recpipe.flows"
    )
