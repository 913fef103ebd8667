"""Completion photos in a real S3-compatible server (S3Proxy from Maven Central, in memory,
signatures checked), and the folder store beside it.

Through the workbench: a photo uploaded with a completion lands in the bucket as an object
with its content type, and the URL in ``HandlingCompleted.attachments`` serves the same
bytes (the workbench reading a private bucket, or the bucket itself when it is public); a
photo too large or not an image is refused with nothing stored and nothing produced; a
store that refuses the workbench's keys is a refusal, not a crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.live import Topic
from tests.workbench.conftest import WANGJING, World, file_case
from tests.workbench.test_authorization import client_for, no_record_for, token, wait_listed
from tests.workbench.test_browser import png
from workers.devstack.s3_server import S3Endpoint, running_s3proxy
from workers.runtime.settings import Settings
from workers.workbench.app import create_app, image_sources, photo_store
from workers.workbench.photos import FolderPhotoStore
from workers.workbench.photos_s3 import S3PhotoStore, s3_client

BASE = "http://testserver"


@pytest.fixture(scope="session")
def s3proxy() -> Iterator[S3Endpoint]:
    settings = Settings()
    log = settings.state_dir / "s3proxy" / f"s3proxy-{uuid.uuid4().hex[:8]}.log"
    with running_s3proxy(settings, log) as endpoint:
        yield endpoint


def s3_settings(base: Settings, endpoint: S3Endpoint, bucket: str, **more: Any) -> Settings:
    return base.model_copy(update={
        "workbench_base_url": BASE, "workbench_s3_bucket": bucket,
        "workbench_s3_endpoint_url": endpoint.url, "workbench_s3_region": endpoint.region,
        "workbench_s3_access_key": SecretStr(endpoint.access_key),
        "workbench_s3_secret_key": SecretStr(endpoint.secret_key), **more})


def new_bucket(endpoint: S3Endpoint) -> tuple[str, Any]:
    """A fresh bucket (private, as buckets are by default) and a client for the test."""
    name = f"photos-{uuid.uuid4().hex[:8]}"
    client = s3_client(s3_settings(Settings(), endpoint, name))
    client.create_bucket(Bucket=name)
    return name, client


def keys(client: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def signed_case(world: World, client: TestClient) -> str:
    """A fresh case of unit A, signed for through the workbench; its id."""
    s = world.settings
    cid = file_case(s, Topic(s, s.topic_dispatches), "WBS", *WANGJING)["complaint_id"]
    wait_listed(client, cid)
    signed = client.post(f"/cases/{cid}/sign", data={"csrf_token": token(
        client.get(f"/cases/{cid}").text)})
    assert signed.status_code == 200 and "已办理" in signed.text, signed.text[-2000:]
    return cid


def complete(client: TestClient, cid: str, *files: tuple[str, bytes, str]) -> httpx.Response:
    return client.post(f"/cases/{cid}/complete", data={
        "csrf_token": token(client.get(f"/cases/{cid}").text), "result": "RESOLVED",
        "reply_text": "电梯已修复"}, files=[("photos", f) for f in files])


@pytest.fixture(scope="module")
def private(world: World, s3proxy: S3Endpoint) -> Iterator[tuple[TestClient, str, Any]]:
    """Unit A on a workbench whose photos go to a private bucket (URLs: /photos/<key>),
    at most 64 KB each; the bucket's name and a client for it."""
    bucket, client = new_bucket(s3proxy)
    app = create_app(s3_settings(world.settings, s3proxy, bucket,
                                 workbench_photo_max_bytes=64 * 1024,
                                 workbench_outcome_wait_s=10.0))
    unit = client_for(app, "unit-a")
    yield unit, bucket, client
    unit.__exit__(None, None, None)


@pytest.fixture(scope="module")
def open_case(world: World, private: tuple[TestClient, str, Any]) -> str:
    """A fresh case with unit A's dispatch open (the photo checks come before the dispatch's
    state is looked at, so it need not be signed)."""
    s = world.settings
    cid = file_case(s, Topic(s, s.topic_dispatches), "WBP", *WANGJING)["complaint_id"]
    wait_listed(private[0], cid)
    return cid


@pytest.mark.stack
def test_a_photo_lands_in_the_bucket_and_its_event_url_serves_it(
        world: World, s3proxy: S3Endpoint, private: tuple[TestClient, str, Any]) -> None:
    unit, bucket, client = private
    s = world.settings
    cid = signed_case(world, unit)
    photo = png(16, 16)
    done = complete(unit, cid, ("elevator.png", photo, "image/png"))
    assert done.status_code == 200 and "已办理" in done.text, done.text[-2000:]

    completed = Topic(s, s.topic_unit_replies).wait_for(
        lambda n, r: n == "HandlingCompleted" and r["complaint_id"] == cid)
    [url] = completed["attachments"]
    key = url.removeprefix(f"{BASE}/photos/")
    assert key != url and key.endswith(".png")
    stored = client.get_object(Bucket=bucket, Key=key)
    assert stored["ContentType"] == "image/png" and stored["Body"].read() == photo
    # The bucket is private: only the workbench, with its keys, reads the object for the URL.
    assert httpx.get(f"{s3proxy.url}/{bucket}/{key}").status_code == 403
    served = unit.get(url)
    assert served.status_code == 200 and served.content == photo
    assert served.headers["content-type"] == "image/png"
    # The case page shows it inline from the workbench.
    assert f'<img src="/photos/{key}"' in unit.get(f"/cases/{cid}").text
    # Names that are not the workbench's own never reach the bucket.
    assert unit.get("/photos/" + "0" * 32 + ".png").status_code == 404
    assert unit.get("/photos/..%2Fsecret.png").status_code == 404


@pytest.mark.stack
def test_a_photo_too_large_or_not_an_image_is_refused_and_nothing_is_stored(
        world: World, private: tuple[TestClient, str, Any], open_case: str) -> None:
    unit, bucket, client = private
    before = keys(client, bucket)
    mine = open_case
    big = complete(unit, mine, ("big.png", png(200, 200) + b"\0" * 65 * 1024, "image/png"))
    assert big.status_code == 400 and "big.png: over 64 KB" in big.text
    # One good photo beside a bad one: nothing at all is stored.
    fake = complete(unit, mine, ("ok.png", png(), "image/png"),
                    ("page.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg"))
    assert fake.status_code == 400 and "page.jpg: not a JPEG, PNG or WebP photo" in fake.text
    assert keys(client, bucket) == before
    no_record_for(world, world.settings.topic_unit_replies, mine, seconds=2)


@pytest.mark.stack
def test_a_public_bucket_serves_the_photo_at_its_own_url(world: World,
                                                         s3proxy: S3Endpoint) -> None:
    bucket, client = new_bucket(s3proxy)
    public = f"{s3proxy.url}/{bucket}"
    app = create_app(s3_settings(world.settings, s3proxy, bucket,
                                 workbench_s3_public_base_url=public + "/",
                                 workbench_outcome_wait_s=10.0))
    unit = client_for(app, "unit-a")
    try:
        cid = signed_case(world, unit)
        photo = png(12, 12)
        done = complete(unit, cid, ("lift.png", photo, "image/png"))
        assert done.status_code == 200
        s = world.settings
        completed = Topic(s, s.topic_unit_replies).wait_for(
            lambda n, r: n == "HandlingCompleted" and r["complaint_id"] == cid)
        [url] = completed["attachments"]
        key = url.removeprefix(f"{public}/")
        assert key != url and keys(client, bucket) == [key]
        # What the operator's bucket policy (or CDN) does for a public bucket; the workbench
        # itself never sets an ACL (AWS buckets refuse them by default).
        client.put_object_acl(Bucket=bucket, Key=key, ACL="public-read")
        served = httpx.get(url)
        assert served.status_code == 200 and served.content == photo
        assert served.headers["content-type"] == "image/png"
        page = unit.get(f"/cases/{cid}")
        assert f'<img src="{url}"' in page.text
        assert s3proxy.url in page.headers["content-security-policy"]
    finally:
        unit.__exit__(None, None, None)


@pytest.mark.stack
def test_a_store_that_refuses_the_keys_is_a_refusal_and_nothing_is_produced(
        world: World, s3proxy: S3Endpoint, open_case: str) -> None:
    bucket, client = new_bucket(s3proxy)
    app = create_app(s3_settings(world.settings, s3proxy, bucket,
                                 workbench_s3_secret_key=SecretStr("not the secret")))
    unit = client_for(app, "unit-a")
    try:
        mine = open_case
        refused = complete(unit, mine, ("ok.png", png(), "image/png"))
        assert refused.status_code == 503 and "SignatureDoesNotMatch" in refused.text
        assert unit.get("/photos/" + "0" * 32 + ".png").status_code == 503
        assert keys(client, bucket) == []
        no_record_for(world, world.settings.topic_unit_replies, mine, seconds=1)
    finally:
        unit.__exit__(None, None, None)


def test_the_settings_choose_the_store(tmp_path: Path) -> None:
    folder = Settings(workbench_photo_dir=tmp_path)
    assert isinstance(photo_store(folder, BASE), FolderPhotoStore)
    assert image_sources(folder) == "'self' data:"
    bucket = folder.model_copy(update={
        "workbench_s3_bucket": "b", "workbench_s3_endpoint_url": "http://127.0.0.1:1",
        "workbench_s3_region": "us-east-1",
        "workbench_s3_public_base_url": "https://photos.example.org/b"})
    store = photo_store(bucket, BASE)
    assert isinstance(store, S3PhotoStore)
    assert image_sources(bucket) == "'self' data: https://photos.example.org"
    # Only one of the key pair is a configuration error, said in one line.
    half = bucket.model_copy(update={"workbench_s3_access_key": SecretStr("k")})
    with pytest.raises(ValueError, match="both HOTLINE_WORKBENCH_S3_ACCESS_KEY"):
        photo_store(half, BASE)


def test_the_folder_store_still_serves_its_photos(tmp_path: Path) -> None:
    # No stack: /photos/ needs neither the ledger nor Kafka (the app's lifespan is not run).
    settings = Settings(workbench_photo_dir=tmp_path, workbench_base_url=BASE)
    app = create_app(settings)
    store = app.state.workbench.photos
    photo = png()
    url = store.save(photo, store.check("a.png", photo))
    assert url.startswith(f"{BASE}/photos/") and (tmp_path / url.rsplit("/", 1)[1]).is_file()
    client = TestClient(app, base_url=BASE)
    served = client.get(url)
    assert served.status_code == 200 and served.content == photo
    assert served.headers["content-type"] == "image/png"
    assert client.get("/photos/" + "0" * 32 + ".png").status_code == 404
