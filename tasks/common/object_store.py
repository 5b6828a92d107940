"""An S3-compatible object store under `s3://bucket/prefix`, through pyarrow's S3 filesystem.

When `RECPIPE_OBJECT_STORE` is set, the store holds the shop's lasting data: the lake (its
files, then its manifest) and the published recommendation versions (their files, then the
`CURRENT` pointer). The data directory is then a working copy: runs pull the lake from the
store before they read it and push what they land or publish. Objects are written before the
object that names them, so a reader that follows the manifest or the pointer never sees a
partial ingest or version. `duckdb_connection` gives DuckDB the same store as `s3://` (its
httpfs extension is not needed).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from recpipe.errors import InputError


@dataclass
class ObjectStore:
    url: str  # s3://bucket/prefix
    fs: object  # pyarrow.fs.S3FileSystem

    @property
    def root(self) -> str:
        return self.url.removeprefix("s3://").rstrip("/")

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel.lstrip('/')}" if rel else self.root

    def exists(self, rel: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(self.path(rel)).type == pafs.FileType.File

    def read_text(self, rel: str) -> str | None:
        if not self.exists(rel):
            return None
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read().decode()

    def write_text(self, rel: str, text: str) -> None:
        """One PUT of the whole object: readers see the old or the new text, never a part."""
        with self.fs.open_output_stream(self.path(rel)) as f:
            f.write(text.encode())

    def upload(self, local: Path, rel: str) -> None:
        import pyarrow.fs as pafs

        pafs.copy_files(
            str(local), self.path(rel), destination_filesystem=self.fs, use_threads=False
        )

    def download(self, rel: str, local: Path) -> None:
        """Copy an object to `local` through a temporary file, so `local` is whole or absent."""
        import pyarrow.fs as pafs

        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=".download-")
        os.close(fd)
        try:
            pafs.copy_files(self.path(rel), tmp, source_filesystem=self.fs, use_threads=False)
            os.replace(tmp, local)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def listed(self, rel_dir: str) -> set[str]:
        """Paths (relative to the store's root) of the objects under `rel_dir`."""
        import pyarrow.fs as pafs

        infos = self.fs.get_file_info(
            pafs.FileSelector(self.path(rel_dir), recursive=True, allow_not_found=True)
        )
        prefix = self.root + "/"
        return {i.path.removeprefix(prefix) for i in infos if i.type == pafs.FileType.File}

    def delete_dir(self, rel_dir: str) -> None:
        self.fs.delete_dir(self.path(rel_dir))


def object_store(
    url: str | None,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    region: str | None = None,
) -> ObjectStore | None:
    """The store at `url` (None when no store is configured). `endpoint_url` points at an
    S3-compatible server (http://127.0.0.1:8333); keys and region default to the AWS_*
    environment, as every S3 client's do. The bucket must exist."""
    if not url:
        return None
    if not url.startswith("s3://") or not url.removeprefix("s3://").strip("/"):
        raise InputError(f"object store {url!r}: expected s3://bucket or s3://bucket/prefix")
    import pyarrow.fs as pafs

    kwargs: dict = {"region": region or os.environ.get("AWS_REGION") or "us-east-1"}
    if access_key_id:
        kwargs |= {"access_key": access_key_id, "secret_key": secret_access_key or ""}
    if endpoint_url:
        scheme, _, host = endpoint_url.partition("://")
        if not host:
            scheme, host = "https", endpoint_url
        kwargs |= {"endpoint_override": host.rstrip("/"), "scheme": scheme}
    store = ObjectStore(url.rstrip("/"), pafs.S3FileSystem(**kwargs))
    bucket = store.root.split("/")[0]
    try:
        info = store.fs.get_file_info(bucket)
    except OSError as exc:
        raise InputError(f"object store {url}: {str(exc).splitlines()[0]}") from exc
    if info.type != pafs.FileType.Directory:
        raise InputError(f"object store {url}: bucket {bucket!r} does not exist (create it first)")
    return store


def duckdb_connection(store: ObjectStore, database: str = ":memory:"):
    """A DuckDB connection that reads and writes `s3://` paths through the store's filesystem
    (for readers of the published tables in their own systems)."""
    import duckdb
    from fsspec.implementations.arrow import ArrowFSWrapper

    class _S3(ArrowFSWrapper):
        protocol = ("s3",)

    con = duckdb.connect(database)
    con.register_filesystem(_S3(store.fs))
    return con
