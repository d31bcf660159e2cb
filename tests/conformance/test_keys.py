"""The key rules hold identically on every backend, for every operation."""

import pytest

from persisty_data.errors import InvalidKeyError

INVALID_KEYS = [
    "",
    "/absolute",
    "/etc/passwd",
    "trailing/",
    "double//slash",
    ".",
    "..",
    "../escape",
    "a/../../escape",
    "a/./b",
    "a/..",
    "back\\slash",
    "..\\windows",
    "nul\x00byte",
    "control\x01char",
    "new\nline",
    "tab\there",
    "del\x7fchar",
    "c1\x85char",
    "x" * 1025,
    "a/" + "y" * 256,
    "é" * 513,  # 1026 bytes in UTF-8
    "lone\udc80surrogate",
    ".persisty_data/tmp/x",
    ".PERSISTY_DATA/meta",
]

VALID_KEYS = [
    "plain",
    "with space/and more spaces.txt",
    "unicode/ünïcødé/日本語/😀.png",
    "dots.../...hidden/..x/x..",
    ".hidden",
    "a/.persisty_data",
    "/".join(["k" * 204] * 5),  # exactly 1024 bytes
    "/".join(["s" * 255, "t" * 255, "u" * 255, "v" * 255]),
    "é" * 127 + "/" + "ü" * 127,
    "colon:semi;comma,percent%20plus+quote'\"",
    "sub/.persisty_datax/file",
]


class TestKeyRules:
    @pytest.mark.parametrize("key", INVALID_KEYS, ids=range(len(INVALID_KEYS)))
    def test_invalid_keys_are_refused_everywhere(self, store, key):
        store.write_bytes("existing", b"x")
        operations = [
            lambda: store.read(key),
            lambda: store.delete(key),
            lambda: store.get_data_writer(key),
            lambda: store.write_bytes(key, b"data"),
            lambda: store.copy_data_from(store, "existing", key),
            lambda: store.copy_data_from(store, key, "target"),
            lambda: store.read_batch([key]),
        ]
        for operation in operations:
            with pytest.raises(InvalidKeyError):
                operation()
        assert [i.key for i in store.search_all()] == ["existing"]

    def test_valid_keys_round_trip(self, store):
        for index, key in enumerate(VALID_KEYS):
            data = f"content {index}".encode()
            assert store.write_bytes(key, data).key == key
            item = store.read(key)
            assert item is not None, key
            assert item.read_bytes() == data
        assert sorted(i.key for i in store.search_all()) == sorted(VALID_KEYS)
        for key in VALID_KEYS:
            assert store.delete(key), key
        assert store.count() == 0
