"""The S3 API server the model-operations tests run against: moto's server mode on 127.0.0.1,
reached through django-storages and boto3 as production reaches its bucket."""

from __future__ import annotations

import io
import urllib.request
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from modelops.ml import synthetic

REGION = "us-east-1"
KEY_ID = SECRET = "testing"


@pytest.fixture(scope="module")
def s3_server():
    """An S3 API server on a free port of 127.0.0.1; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    yield endpoint
    # moto keeps its buckets in this process: leave none behind for other tests.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
    server.stop()


@pytest.fixture
def s3(s3_server, bucket, db, settings, monkeypatch):
    """A fresh bucket, with the incoming and models storages pointed at its prefixes exactly as
    fraudsite/settings.py configures S3 (requests ``bucket`` so this override wins over it).
    Yields a boto3 client on the same server and the bucket name."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    # The server is local: never send its traffic through a proxy.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    name = f"fraud-{uuid.uuid4().hex[:16]}"
    client = boto3.client(
        "s3", endpoint_url=s3_server, region_name=REGION, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )
    client.create_bucket(Bucket=name)

    def storage(prefix: str) -> dict:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "location": prefix,
                "access_key": KEY_ID,
                "secret_key": SECRET,
                "region_name": REGION,
                "endpoint_url": s3_server,
                "file_overwrite": True,
                "default_acl": None,
                "querystring_auth": False,
            },
        }

    # Assigning STORAGES resets django's storages cache; the settings fixture restores it.
    settings.STORAGES = {**settings.STORAGES, "incoming": storage("incoming"), "models": storage("models")}
    settings.FRAUD_TRAINING = {**settings.FRAUD_TRAINING, "n_estimators": 40}
    yield client, name


def csv_bytes(*, rows: int, seed: int) -> bytes:
    buffer = io.StringIO()
    synthetic.write_csv(synthetic.generate(rows=rows, fraud_rate=0.02, seed=seed), buffer)
    return buffer.getvalue().encode()


def upload(s3, name: str, body: bytes) -> str:
    """Put ``body`` at incoming/``name``; return its ETag as S3 reports it, without quotes."""
    client, bucket_name = s3
    return client.put_object(Bucket=bucket_name, Key=f"incoming/{name}", Body=body)["ETag"].strip('"')
