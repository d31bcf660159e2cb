"""
load_config (docs/configuration.md): dicts, TOML files, environment overrides and
env-only stores, every backend, factory and policy, secrets, and the errors that name
the store and the setting.
"""

import base64
import json
import logging
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from persisty.security.store_security import INTERNAL_ONLY, UNSECURED
from servey.security.authorization import Authorization

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.config.data_config import DataConfig, load_config
from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.errors import ConfigurationError, ItemTooLargeError
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity
from persisty_data.s3.s3_data_store import S3DataStore
from persisty_data.s3.s3_data_store_factory import S3DataStoreFactory
from tests.s3_backends import REGION, empty_and_delete_bucket, moto_in_process, new_bucket_name

SECRET = "config-test-secret-0123456789abcdef"  # 35 bytes
ALICE = Authorization("alice", frozenset(), None, None)


def directory(root, **settings) -> dict:
    return {"backend": "directory", "root": str(root), "fsync": False, **settings}


def config_error(source, env=None) -> str:
    with pytest.raises(ConfigurationError) as info:
        load_config(source, env=env or {})
    return str(info.value)


# region: sources
def test_dict(tmp_path):
    config = load_config(
        {
            "defaults": {"secret": SECRET, "base_url": "http://127.0.0.1:8000/"},
            "stores": {
                "docs": directory(
                    tmp_path / "docs",
                    max_item_size=10,
                    permitted_content_types=["text/*", "application/pdf"],
                    upload_expiry=60,
                    download_expiry=120,
                    path_prefix="files",
                ),
                "chunks": {"backend": "chunk", "url": "mem", "chunk_size": 2048},
            },
        },
        env={},
    )
    assert isinstance(config, DataConfig)
    assert config.store_names == ["docs", "chunks"]
    factories = config.factories
    assert list(factories) == ["docs", "chunks"]  # file order
    docs = factories["docs"]
    assert isinstance(docs, HostedDataStoreFactory)
    assert docs.name == "docs" and docs.secret == SECRET.encode()
    assert docs.base_url == "http://127.0.0.1:8000" and docs.path_prefix == "/files"
    assert docs.upload_expiry == timedelta(seconds=60) and docs.download_expiry == timedelta(seconds=120)
    assert isinstance(docs.security, OwnedDataStoreSecurity)  # the default policy
    store = config.get_store("docs")
    assert isinstance(store, DirectoryDataStore) and store is docs.get_store() and not store.fsync
    meta = store.get_meta()
    assert meta.name == "docs" and meta.max_item_size == 10
    assert meta.permitted_content_types == ("text/*", "application/pdf")
    assert store.write_bytes("a.txt", b"hello").size == 5
    with pytest.raises(ItemTooLargeError):
        store.write_bytes("b.txt", b"more than ten bytes")
    chunks = config.get_store("chunks")
    assert isinstance(chunks, ChunkDataStore) and chunks.chunk_size == 2048
    assert chunks.write_bytes("x/y.bin", b"\0" * 5000).size == 5000  # mem: two MemStoreFactory instances
    assert config.get_factory("chunks") is factories["chunks"]  # built once


def test_toml_file_relative_paths(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "stores.toml"
    path.write_text(
        f"""
[defaults]
secret = "{SECRET}"

[stores.zeta]
backend = "directory"
root = "data/zeta"

[stores.alpha]
backend = "chunk"
url = "sqlite:///data/alpha.db"
chunk_size = 1024
"""
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path, env={})
    assert config.source == str(path)
    assert config.store_names == ["zeta", "alpha"]
    assert config.stores["zeta"].settings["root"] == str(folder / "data" / "zeta")
    assert config.stores["alpha"].settings["url"] == f"sqlite:///{folder / 'data' / 'alpha.db'}"
    assert not (folder / "data").exists()  # built lazily
    config.get_store("zeta").write_bytes("k", b"v")
    config.get_store("alpha").write_bytes("k", b"v")
    assert (folder / "data" / "zeta" / "k").read_bytes() == b"v"
    assert (folder / "data" / "alpha.db").is_file()
    assert not (elsewhere / "data").exists()
    assert load_config(str(path), env={}).store_names == ["zeta", "alpha"]  # str works too


def test_dict_relative_paths_use_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config({"stores": {"a": {"backend": "directory", "root": "files", "secret": SECRET}}}, env={})
    assert config.stores["a"].settings["root"] == str(tmp_path / "files")


def test_default_file_and_config_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(None, env={}).store_names == []  # no file: no stores
    Path("persisty-data.toml").write_text('[stores.here]\nbackend = "s3"\nbucket = "b"\n')
    assert load_config(None, env={}).store_names == ["here"]
    other = tmp_path / "other.toml"
    other.write_text('[stores.there]\nbackend = "s3"\nbucket = "b"\n')
    assert load_config(None, env={"PERSISTY_DATA_CONFIG": str(other)}).store_names == ["there"]
    message = config_error(None, {"PERSISTY_DATA_CONFIG": str(tmp_path / "missing.toml")})
    assert "missing.toml" in message and "PERSISTY_DATA_CONFIG" in message


def test_file_errors(tmp_path):
    assert "config file not found" in config_error(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[stores.a\nbackend = 1\n")
    message = config_error(bad)
    assert message.startswith("configuration_error: ") and str(bad) in message and "invalid TOML" in message
    assert "must be a path, a dict or None" in config_error(42)


# endregion


# region: environment
def test_env_overrides(tmp_path):
    source = {
        "defaults": {"secret": SECRET},
        "stores": {"my-files": directory(tmp_path / "files", max_item_size=5)},
    }
    env = {
        "PERSISTY_DATA_MY_FILES_MAX_ITEM_SIZE": "1048576",
        "PERSISTY_DATA_MY_FILES_PERMITTED_CONTENT_TYPES": "image/*, application/pdf",
        "PERSISTY_DATA_MY_FILES_FSYNC": "yes",
        "PERSISTY_DATA_MY_FILES_POLICY": "owned",
        "PERSISTY_DATA_MY_FILES_READ_BY_OTHERS": "1",
        "PERSISTY_DATA_MY_FILES_ROOT": str(tmp_path / "from-env"),
        "PERSISTY_DATA_MAIN": "not_a_store_setting",  # other PERSISTY_DATA_* variables are left alone
        "PERSISTY_DATA_TEST_POSTGRES": "postgresql://x",
    }
    config = load_config(source, env=env)
    settings = config.stores["my-files"].settings
    assert settings["max_item_size"] == 1048576
    assert settings["permitted_content_types"] == ("image/*", "application/pdf")
    assert settings["fsync"] is True and settings["read_by_others"] is True
    assert settings["root"] == str(tmp_path / "from-env")
    factory = config.get_factory("my-files")
    assert factory.security == OwnedDataStoreSecurity(read_by_others=True)


def test_env_only_stores(tmp_path):
    env = {
        "PERSISTY_DATA_STORES": "uploads, scratch",
        "PERSISTY_DATA_SECRET": SECRET,
        "PERSISTY_DATA_UPLOADS_BACKEND": "directory",
        "PERSISTY_DATA_UPLOADS_ROOT": str(tmp_path / "uploads"),
        "PERSISTY_DATA_SCRATCH_BACKEND": "chunk",
        "PERSISTY_DATA_SCRATCH_URL": f"sqlite:///{tmp_path / 'scratch.db'}",
        "PERSISTY_DATA_SCRATCH_CHUNK_SIZE": "4096",
    }
    config = load_config(None, env=env)
    assert config.store_names == ["uploads", "scratch"]
    assert config.get_factory("uploads").secret == SECRET.encode()  # PERSISTY_DATA_SECRET
    scratch = config.get_store("scratch")
    assert isinstance(scratch, ChunkDataStore) and scratch.chunk_size == 4096
    assert scratch.write_bytes("a", b"abc").etag == config.get_store("uploads").write_bytes("a", b"abc").etag


def test_env_errors(tmp_path):
    base = {"defaults": {"secret": SECRET}, "stores": {"files": directory(tmp_path)}}
    message = config_error(base, {"PERSISTY_DATA_FILES_CHUNK_SIZE": "big"})
    assert message == (
        "configuration_error: stores.files.chunk_size (PERSISTY_DATA_FILES_CHUNK_SIZE): must be an integer >= 1024, "
        "got 'big'"
    )
    message = config_error(base, {"PERSISTY_DATA_FILES_MAX_ITEM_SIZ": "5"})
    assert "stores.files.max_item_siz (PERSISTY_DATA_FILES_MAX_ITEM_SIZ): unknown setting" in message
    assert "did you mean 'max_item_size'" in message
    message = config_error(base, {"PERSISTY_DATA_FILES_FSYNC": "maybe"})
    assert "stores.files.fsync (PERSISTY_DATA_FILES_FSYNC): must be a boolean" in message
    assert "PERSISTY_DATA_DEVELOPMENT" in config_error(base, {"PERSISTY_DATA_FILES_DEVELOPMENT": "1"})
    message = config_error(None, {"PERSISTY_DATA_STORES": "ok,bad name"})
    assert message.startswith("configuration_error: PERSISTY_DATA_STORES: invalid store name 'bad name'")
    both = {"stores": {"a-b": directory(tmp_path / "1"), "a_b": directory(tmp_path / "2")}}
    assert "same environment name PERSISTY_DATA_A_B_*" in config_error(both)
    # the longest store name wins: a_b's setting, not a's unknown setting "b_root"
    env = {"PERSISTY_DATA_STORES": "a,a_b", "PERSISTY_DATA_A_B_ROOT": str(tmp_path / "ab")}
    source = {"defaults": {"backend": "directory", "root": str(tmp_path / "a"), "secret": SECRET}}
    assert load_config(source, env=env).stores["a_b"].settings["root"] == str(tmp_path / "ab")


# endregion


# region: backends, factories, policies
def test_s3_backend(tmp_path):
    with moto_in_process():
        bucket = new_bucket_name()
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=bucket)
        try:
            config = load_config(
                {
                    "defaults": {"secret": SECRET, "policy": "unsecured"},
                    "stores": {
                        "direct": {
                            "backend": "s3",
                            "bucket": bucket,
                            "prefix": "direct",
                            "region": REGION,
                            "part_size": 6 * 1024 * 1024,
                            "max_concurrency": 2,
                            "publish_by_copy": True,
                            "max_item_size": 1000,
                        },
                        "proxied": {"backend": "s3", "bucket": bucket, "region": REGION, "factory": "hosted"},
                    },
                },
                env={},
            )
            direct = config.get_factory("direct")
            assert isinstance(direct, S3DataStoreFactory)  # the default factory for s3
            store = direct.get_store()
            assert isinstance(store, S3DataStore)
            assert (store.bucket, store.prefix, store.part_size) == (bucket, "direct/", 6 * 1024 * 1024)
            assert store.max_concurrency == 2 and store.publish_by_copy is True
            assert store.client.meta.region_name == REGION
            item = store.write_bytes("a.txt", b"hello")
            assert client.get_object(Bucket=bucket, Key="direct/a.txt")["Body"].read() == b"hello"
            url = direct.get_download_url("a.txt", None)
            assert "X-Amz-Signature=" in url
            form = direct.get_upload_form("b.txt", None).fields_dict()
            policy = json.loads(base64.b64decode(form["policy"]))
            assert ["content-length-range", 0, 1000] in policy["conditions"]  # max_item_size
            assert form["key"] == "direct/b.txt"
            proxied = config.get_factory("proxied")
            assert isinstance(proxied, HostedDataStoreFactory) and isinstance(proxied.get_store(), S3DataStore)
            assert proxied.get_store().read("direct/a.txt").etag == item.etag
        finally:
            empty_and_delete_bucket(client, bucket)


def test_policies(tmp_path):
    def factory(**settings):
        source = {"defaults": {"secret": SECRET}, "stores": {"s": directory(tmp_path / "s", **settings)}}
        return load_config(source, env={}).get_factory("s")

    owned = factory(anonymous_read=True)
    assert owned.security == OwnedDataStoreSecurity(read_by_others=False, anonymous_read=True)
    owned.get_store().write_bytes("alice/a.txt", b"a")
    assert owned.create(None).read("alice/a.txt") is not None  # anonymous_read
    assert owned.get_upload_form("alice/b.txt", None) is None
    assert owned.get_upload_form("alice/b.txt", ALICE) is not None
    assert owned.get_upload_form("bob/b.txt", ALICE) is None
    private = factory()
    assert private.create(None) is None and private.create(ALICE) is not None
    assert factory(policy="unsecured").security is UNSECURED
    assert factory(policy="unsecured").get_upload_form("any/key.txt", None) is not None
    internal = factory(policy="internal")
    assert internal.security is INTERNAL_ONLY
    root = Authorization("admin", frozenset({"root"}), None, None)
    assert internal.create(root) is None and internal.get_download_url("alice/a.txt", root) is None


def test_settings_for_other_kinds_of_store(tmp_path):
    # in [defaults], settings for other backends / factories / policies are ignored...
    source = {
        "defaults": {
            "root": str(tmp_path / "shared"),
            "chunk_size": 4096,
            "bucket": "b",
            "secret": SECRET,
            "read_by_others": True,
            "factory": "s3",
        },
        "stores": {"c": {"backend": "chunk", "url": "mem", "policy": "unsecured"}},
    }
    store = load_config(source, env={}).stores["c"]
    assert store.settings == {"url": "mem", "chunk_size": 4096}
    assert store.factory == "hosted"
    # ...but given for the store itself, they are errors
    cases = [
        ({"backend": "chunk", "url": "mem", "root": "x"}, "stores.c.root: only for backend 'directory'"),
        ({"backend": "chunk", "url": "mem", "bucket": "b"}, "stores.c.bucket: only for backend 's3'"),
        ({"backend": "s3", "bucket": "b", "secret": SECRET}, "stores.c.secret: only for factory 'hosted'"),
        ({"backend": "chunk", "url": "mem", "policy": "internal", "anonymous_read": True}, "only for policy 'owned'"),
        ({"backend": "chunk", "url": "mem", "factory": "s3"}, "stores.c.factory: factory 's3' needs backend 's3'"),
        ({"backend": "chunk", "url": "mem", "development": True}, "stores.c.development: only in [defaults]"),
        ({"backend": "directory"}, "stores.c.root: required for backend 'directory'"),
        ({"backend": "chunk"}, "stores.c.url: required for backend 'chunk'"),
        ({"backend": "s3"}, "stores.c.bucket: required for backend 's3'"),
        ({"url": "mem"}, "stores.c.backend: required"),
    ]
    for settings, expected in cases:
        message = config_error({"defaults": {"secret": SECRET}, "stores": {"c": settings}})
        assert message.startswith("configuration_error: ") and expected in message, (settings, message)


# endregion


# region: secrets
def hosted_store(tmp_path, **settings) -> dict:
    return {"stores": {"files": directory(tmp_path / "files", **settings)}}


def test_secret_sources(tmp_path):
    other = "another-secret-0123456789abcdef-0123"
    env = {"PERSISTY_DATA_SECRET": other}
    assert load_config(hosted_store(tmp_path), env=env).stores["files"].secret == other.encode()
    source = {"defaults": {"secret": SECRET}, **hosted_store(tmp_path)}
    assert load_config(source, env=env).stores["files"].secret == SECRET.encode()  # defaults before env
    source = hosted_store(tmp_path, secret=other)
    assert load_config(source, env={"PERSISTY_DATA_FILES_SECRET": SECRET}).stores["files"].secret == SECRET.encode()
    assert SECRET not in repr(load_config(source, env={}).stores["files"])


def test_secret_missing_or_short(tmp_path):
    message = config_error(hosted_store(tmp_path))
    assert message.startswith("configuration_error: stores.files.secret: missing")
    assert "PERSISTY_DATA_SECRET" in message
    message = config_error(hosted_store(tmp_path, secret="too-short"))
    assert message == "configuration_error: stores.files.secret: must be at least 32 bytes, got 9"
    message = config_error({"defaults": {"secret": "short"}, **hosted_store(tmp_path)})
    assert (
        message == "configuration_error: stores.files.secret: must be at least 32 bytes, got 5 (from defaults.secret)"
    )
    assert "too-short" not in message
    message = config_error(hosted_store(tmp_path), {"PERSISTY_DATA_SECRET": "short"})
    assert "(from PERSISTY_DATA_SECRET)" in message
    assert "must be a string, got int" in config_error(hosted_store(tmp_path, secret=12345))
    # an s3 factory signs with AWS credentials: no secret needed
    load_config({"stores": {"s": {"backend": "s3", "bucket": "b", "region": REGION}}}, env={})


def test_development_secret(tmp_path, caplog):
    source = {
        "defaults": {"development": True},
        "stores": {
            "one": directory(tmp_path / "one"),
            "two": directory(tmp_path / "two", secret="short"),
        },
    }
    with caplog.at_level(logging.WARNING, logger="persisty_data.config.data_config"):
        config = load_config(source, env={})
    one, two = config.stores["one"].secret, config.stores["two"].secret
    assert one == two and len(one) == 32  # one random secret per process
    assert config.development is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith("stores.one.secret: missing") and "development mode" in warnings[0]
    assert warnings[1].startswith("stores.two.secret: must be at least 32 bytes")
    form = config.get_factory("one").get_upload_form("alice/a.txt", ALICE)
    assert form is not None
    # PERSISTY_DATA_DEVELOPMENT turns it on (or off) from the environment
    source = hosted_store(tmp_path)
    assert len(load_config(source, env={"PERSISTY_DATA_DEVELOPMENT": "1"}).stores["files"].secret) == 32
    on_in_file = {"defaults": {"development": True}, **source}
    assert "stores.files.secret: missing" in config_error(on_in_file, {"PERSISTY_DATA_DEVELOPMENT": "false"})
    assert "PERSISTY_DATA_DEVELOPMENT: must be a boolean" in config_error(source, {"PERSISTY_DATA_DEVELOPMENT": "x"})


# endregion


# region: errors
def test_unknown_settings_and_sections(tmp_path):
    message = config_error({"stores": {"files": directory(tmp_path, bukcet="b")}})
    assert message == "configuration_error: stores.files.bukcet: unknown setting (did you mean 'bucket'?)"
    assert "defaults.sekret: unknown setting (did you mean 'secret'?)" in config_error({"defaults": {"sekret": "x"}})
    assert "store: unknown section" in config_error({"store": {}})
    assert "stores.files: must be a table" in config_error({"stores": {"files": "directory"}})
    assert "stores: must be a table" in config_error({"stores": ["files"]})
    assert "invalid store name 'a:b'" in config_error({"stores": {"a:b": directory(tmp_path)}})


BAD_VALUES = [
    ("backend", "ftp", "must be one of directory, chunk, s3; got 'ftp'"),
    ("fsync", "yes", "must be a boolean (true or false), got 'yes'"),
    ("chunk_size", "big", "must be an integer >= 1024, got 'big'"),
    ("chunk_size", 512, "must be an integer >= 1024, got 512"),
    ("url", "nope", "must be 'mem' or an SQL URL"),
    ("url", "postgress://user:password@host/db", "unknown SQL dialect 'postgress' in 'postgress://user:***@host/db'"),
    ("url", "", "must not be empty"),
    ("max_item_size", -1, "must be an integer >= 1 (omit it for no limit), got -1"),
    ("max_item_size", True, "got True"),
    ("max_item_size", 1.5, "got 1.5"),
    ("permitted_content_types", 5, "must be a list of content types"),
    ("permitted_content_types", ["image/*", 3], "must contain only strings, got 3"),
    ("permitted_content_types", ["image"], "'image' is not a content type"),
    ("permitted_content_types", ["*/png"], "'*/png' is not a content type"),
    ("permitted_content_types", ["image/png,text/html"], "'image/png,text/html' is not a content type"),
    ("permitted_content_types", ["image/png; q=1"], "'image/png; q=1' is not a content type"),
    ("upload_expiry", 0, "must be an integer from 1 to 604800 (seconds), got 0"),
    ("download_expiry", 604801, "must be an integer from 1 to 604800 (seconds), got 604801"),
    ("policy", "open", "must be one of owned, unsecured, internal; got 'open'"),
    ("read_by_others", "no", "must be a boolean"),
    ("factory", "ftp", "must be one of hosted, s3; got 'ftp'"),
    ("base_url", "example.com", "must be an http(s) URL"),
    ("base_url", "http://x/?q=1", "without query or fragment"),
    ("path_prefix", "/a b", "must be a URL path"),
    ("root", 5, "must be a string, got 5"),
    ("root", ["a"], "must be a string, got list"),
]
BAD_S3_VALUES = [
    ("bucket", "a/b", "must be a bucket name"),
    ("prefix", "../x", "must be '' or a folder that follows the key rules"),
    ("endpoint_url", "localhost:9000", "must be an http(s) URL"),
    ("region", "US East", "must be a region name"),
    ("part_size", 1024, "must be an integer from 5242880 to 5368709120, got 1024"),
    ("max_concurrency", 0, "must be an integer from 1 to 64, got 0"),
]


@pytest.mark.parametrize("setting, value, problem", BAD_VALUES + BAD_S3_VALUES)
def test_bad_values_name_store_and_setting(tmp_path, setting, value, problem):
    if (setting, value, problem) in BAD_S3_VALUES:
        store = {"backend": "s3", "bucket": "b", "region": REGION, setting: value}
    elif setting == "root":
        store = {"backend": "directory", "root": value}
    elif setting in ("url", "chunk_size"):
        store = {"backend": "chunk", "url": "mem", setting: value}
    else:
        store = directory(tmp_path, **{setting: value})
    message = config_error({"defaults": {"secret": SECRET}, "stores": {"files": store}})
    assert message.startswith(f"configuration_error: stores.files.{setting}: "), message
    assert problem in message, message
    with pytest.raises(ConfigurationError) as info:  # the same value in [defaults] names defaults.<setting>
        load_config({"defaults": {"secret": SECRET, setting: value}, "stores": {}}, env={})
    assert str(info.value).startswith(f"configuration_error: defaults.{setting}: ")


def test_validation_is_eager_and_building_lazy(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    message = config_error({"defaults": {"secret": SECRET}, "stores": {"files": directory(a_file)}})
    assert message == f"configuration_error: stores.files.root: not a directory: {a_file}"
    config = load_config({"defaults": {"secret": SECRET}, "stores": {"files": directory(tmp_path / "later")}}, env={})
    assert not (tmp_path / "later").exists()
    config.get_store("files")
    assert (tmp_path / "later").is_dir()


def test_unknown_store(tmp_path):
    config = load_config({"defaults": {"secret": SECRET}, "stores": {"files": directory(tmp_path)}}, env={})
    with pytest.raises(ConfigurationError) as info:
        config.get_factory("photos")
    assert str(info.value) == "configuration_error: unknown store 'photos' (configured: files)"
    assert info.value.store_name == "photos"
    with pytest.raises(ConfigurationError) as info:
        load_config({}, env={}).get_store("photos")
    assert "no stores are configured" in str(info.value)


def test_build_errors_name_the_store(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    url = f"sqlite:///{blocker}/sub/db.sqlite"
    config = load_config({"stores": {"c": {"backend": "chunk", "url": url, "secret": SECRET}}}, env={})
    with pytest.raises(ConfigurationError) as info:
        config.get_factory("c")
    assert str(info.value).startswith("configuration_error: stores.c: ") and "Not a directory" in str(info.value)
    assert info.value.store_name == "c"
    with pytest.raises(ConfigurationError):  # not cached: tried again
        config.get_factory("c")


# endregion
