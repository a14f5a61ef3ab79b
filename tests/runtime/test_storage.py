"""Local object storage keeps keys inside their bucket, and model archives unpack safely or not
at all."""

import bz2
import gzip
import io
import os
import tarfile
from datetime import UTC
from pathlib import Path

import pytest

from runtime.storage import LocalStorage, ObjectInfo, StorageError, safe_extract


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "s3")


def file_member(name: str, data: bytes = b"weights") -> tuple[tarfile.TarInfo, bytes]:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    return member, data


def folder_member(name: str) -> tuple[tarfile.TarInfo, None]:
    member = tarfile.TarInfo(name)
    member.type = tarfile.DIRTYPE
    member.mode = 0o755
    return member, None


def special_member(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = linkname
    return member, None


def build_archive(path: Path, members: list, compression: str = "gz") -> Path:
    """Write members, as (TarInfo, bytes or None) pairs, into a real archive at path."""
    with tarfile.open(path, f"w:{compression}") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def assert_nothing_extracted(tmp_path: Path, destination: Path) -> None:
    """Only the archive is left in tmp_path: no destination, no temp folder, nothing outside."""
    assert not destination.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.tar.gz"]


# LocalStorage


def test_path_for_maps_bucket_and_key_under_root(storage, tmp_path) -> None:
    path = storage.path_for("s3://my-bucket/models/model.tar.gz")

    assert path == tmp_path / "s3" / "my-bucket" / "models" / "model.tar.gz"


def test_put_then_get_returns_the_same_bytes(storage, tmp_path) -> None:
    storage.put("s3://my-bucket/models/model.tar.gz", b"\x00weights\xff")

    assert storage.get("s3://my-bucket/models/model.tar.gz") == b"\x00weights\xff"
    assert (tmp_path / "s3/my-bucket/models/model.tar.gz").read_bytes() == b"\x00weights\xff"
    assert storage.exists("s3://my-bucket/models/model.tar.gz")


def test_put_replaces_an_object_and_leaves_no_temp_files(storage, tmp_path) -> None:
    storage.put("s3://my-bucket/data.csv", b"old")

    storage.put("s3://my-bucket/data.csv", b"new")

    assert storage.get("s3://my-bucket/data.csv") == b"new"
    assert [path.name for path in (tmp_path / "s3/my-bucket").iterdir()] == ["data.csv"]


def test_put_file_copies_the_file(storage, tmp_path) -> None:
    source = tmp_path / "model.tar.gz"
    source.write_bytes(b"archive" * 1000)

    storage.put_file("s3://my-bucket/models/model.tar.gz", source)

    assert storage.get("s3://my-bucket/models/model.tar.gz") == b"archive" * 1000


def test_put_file_of_a_missing_file_says_so(storage, tmp_path) -> None:
    with pytest.raises(StorageError, match="No file at"):
        storage.put_file("s3://my-bucket/model.tar.gz", tmp_path / "missing.tar.gz")


def test_put_under_a_key_that_is_already_an_object_is_refused(storage) -> None:
    storage.put("s3://my-bucket/models", b"a file")

    with pytest.raises(StorageError, match="both an object and a folder"):
        storage.put("s3://my-bucket/models/model.tar.gz", b"x")


def test_get_of_a_missing_object_says_there_is_no_object(storage) -> None:
    with pytest.raises(StorageError, match=r"No object at s3://my-bucket/missing\.bin"):
        storage.get("s3://my-bucket/missing.bin")

    assert not storage.exists("s3://my-bucket/missing.bin")


def test_list_returns_objects_sorted_by_key_with_size_and_utc_time(storage) -> None:
    storage.put("s3://my-bucket/b/two.bin", b"22")
    storage.put("s3://my-bucket/a.bin", b"1")
    storage.put("s3://my-bucket/b/c/three.bin", b"333")
    storage.put("s3://other-bucket/a.bin", b"elsewhere")

    found = storage.list("s3://my-bucket/")

    assert [info.key for info in found] == ["a.bin", "b/c/three.bin", "b/two.bin"]
    assert [info.size for info in found] == [1, 3, 2]
    assert found[1].uri == "s3://my-bucket/b/c/three.bin"
    assert isinstance(found[0], ObjectInfo)
    assert found[0].modified.tzinfo == UTC


@pytest.mark.parametrize(
    ("prefix", "keys"),
    [
        ("s3://my-bucket", ["models/mobile/w.bin", "models/model.tar.gz", "other/model.tar.gz"]),
        ("s3://my-bucket/models/", ["models/mobile/w.bin", "models/model.tar.gz"]),
        ("s3://my-bucket/models/mo", ["models/mobile/w.bin", "models/model.tar.gz"]),
        ("s3://my-bucket/models/mod", ["models/model.tar.gz"]),
        ("s3://my-bucket/mod", ["models/mobile/w.bin", "models/model.tar.gz"]),
        ("s3://my-bucket/o", ["other/model.tar.gz"]),
        ("s3://my-bucket/x", []),
        ("s3://my-bucket/other/model.tar.gz", ["other/model.tar.gz"]),
        ("s3://my-bucket/nowhere/", []),
        ("s3://empty-bucket/", []),
    ],
)
def test_list_matches_keys_by_plain_text_prefix_like_s3(storage, prefix, keys) -> None:
    for key in ("models/model.tar.gz", "models/mobile/w.bin", "other/model.tar.gz"):
        storage.put(f"s3://my-bucket/{key}", b"x")

    assert [info.key for info in storage.list(prefix)] == keys


def test_list_ignores_half_written_temp_files(storage, tmp_path) -> None:
    storage.put("s3://my-bucket/models/model.tar.gz", b"x")
    (tmp_path / "s3/my-bucket/models/.storage-tmp-abc123").write_bytes(b"half")

    assert [info.key for info in storage.list("s3://my-bucket/")] == ["models/model.tar.gz"]


def test_list_skips_files_behind_symlinks_that_leave_the_bucket(storage, tmp_path) -> None:
    storage.put("s3://my-bucket/real.bin", b"x")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "s3/my-bucket/leak.txt").symlink_to(tmp_path / "secret.txt")

    assert [info.key for info in storage.list("s3://my-bucket/")] == ["real.bin"]


def test_delete_removes_the_object_and_deleting_again_is_no_error(storage) -> None:
    storage.put("s3://my-bucket/models/model.tar.gz", b"x")

    storage.delete("s3://my-bucket/models/model.tar.gz")
    storage.delete("s3://my-bucket/models/model.tar.gz")

    assert not storage.exists("s3://my-bucket/models/model.tar.gz")
    assert storage.list("s3://my-bucket/") == []


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://my-bucket.s3.amazonaws.com/model.tar.gz", "Use an s3://bucket/key URI"),
        ("file:///etc/passwd", "Use an s3://bucket/key URI"),
        ("my-bucket/model.tar.gz", "Use an s3://bucket/key URI"),
        ("s3:///model.tar.gz", "names no bucket"),
        ("s3://My-Bucket/model.tar.gz", "Use 3 to 63 lowercase letters"),
        ("s3://ab/model.tar.gz", "Use 3 to 63 lowercase letters"),
        ("s3://-bucket/model.tar.gz", "Use 3 to 63 lowercase letters"),
        ("s3://bucket-/model.tar.gz", "Use 3 to 63 lowercase letters"),
        (f"s3://{'a' * 64}/model.tar.gz", "Use 3 to 63 lowercase letters"),
        ("s3://my_bucket/model.tar.gz", "Use 3 to 63 lowercase letters"),
        ("s3://my-bucket/../other-bucket/model.tar.gz", r"uses '\.\.'"),
        ("s3://my-bucket/models/../../etc/passwd", r"uses '\.\.'"),
        ("s3://my-bucket/models/..", r"uses '\.\.'"),
        ("s3://my-bucket//etc/passwd", "starts with /"),
        ("s3://my-bucket/model\x00.tar.gz", "NUL or backslash"),
        ("s3://my-bucket/models\\..\\model.tar.gz", "NUL or backslash"),
        ("s3://my-bucket", "names a folder, not an object"),
        ("s3://my-bucket/models/", "names a folder, not an object"),
        ("s3://my-bucket/models//model.tar.gz", "empty or '.' folder name"),
    ],
)
def test_path_for_refuses_uris_that_are_not_safe_s3_object_uris(storage, uri, message) -> None:
    with pytest.raises(StorageError, match=message):
        storage.path_for(uri)


def test_path_for_refuses_a_key_whose_folder_is_a_symlink_leaving_the_bucket(
    storage, tmp_path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "s3/my-bucket").mkdir(parents=True)
    (tmp_path / "s3/my-bucket/models").symlink_to(outside)

    with pytest.raises(StorageError, match="symbolic link"):
        storage.path_for("s3://my-bucket/models/model.tar.gz")
    with pytest.raises(StorageError, match="symbolic link"):
        storage.put("s3://my-bucket/models/model.tar.gz", b"x")
    assert list(outside.iterdir()) == []


def test_path_for_refuses_a_bucket_that_is_a_symlink_leaving_the_root(storage, tmp_path) -> None:
    (tmp_path / "s3").mkdir()
    (tmp_path / "s3/my-bucket").symlink_to(tmp_path)

    with pytest.raises(StorageError, match="symbolic link"):
        storage.path_for("s3://my-bucket/model.tar.gz")


def test_path_for_allows_a_symlink_that_stays_inside_the_bucket(storage, tmp_path) -> None:
    storage.put("s3://my-bucket/v2/model.tar.gz", b"v2")
    (tmp_path / "s3/my-bucket/latest").symlink_to(tmp_path / "s3/my-bucket/v2")

    assert storage.get("s3://my-bucket/latest/model.tar.gz") == b"v2"


# safe_extract


def test_good_archive_is_extracted_with_files_and_folders(tmp_path) -> None:
    archive = build_archive(
        tmp_path / "model.tar.gz",
        [
            file_member("model.joblib", b"model bytes"),
            folder_member("code"),
            file_member("code/inference.py", b"def model_fn(): ..."),
            folder_member("code/empty"),
        ],
    )
    destination = tmp_path / "model"

    names = safe_extract(archive, destination)

    assert names == ["model.joblib", "code", "code/inference.py", "code/empty"]
    assert (destination / "model.joblib").read_bytes() == b"model bytes"
    assert (destination / "code/inference.py").read_bytes() == b"def model_fn(): ..."
    assert (destination / "code/empty").is_dir()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "model.tar.gz"]


def test_plain_uncompressed_tar_is_accepted(tmp_path) -> None:
    archive = build_archive(tmp_path / "model.tar.gz", [file_member("model.bin")], compression="")

    names = safe_extract(archive, tmp_path / "model")

    assert names == ["model.bin"]
    assert (tmp_path / "model/model.bin").read_bytes() == b"weights"


def test_archive_extracts_into_an_existing_empty_folder(tmp_path) -> None:
    archive = build_archive(tmp_path / "model.tar.gz", [file_member("model.bin")])
    destination = tmp_path / "model"
    destination.mkdir()

    safe_extract(archive, destination)

    assert (destination / "model.bin").exists()


def test_archive_is_not_extracted_into_a_folder_that_holds_files(tmp_path) -> None:
    archive = build_archive(tmp_path / "model.tar.gz", [file_member("model.bin")])
    destination = tmp_path / "model"
    destination.mkdir()
    (destination / "old.bin").write_bytes(b"old")

    with pytest.raises(StorageError, match="new or empty folder"):
        safe_extract(archive, destination)

    assert [path.name for path in destination.iterdir()] == ["old.bin"]


def test_tar_slip_archive_is_refused_and_nothing_is_written(tmp_path) -> None:
    archive = build_archive(
        tmp_path / "model.tar.gz",
        [file_member("model.bin"), file_member("../evil", b"owned")],
    )
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match=r"climbs out of its folder, \.\./evil"):
        safe_extract(archive, destination)

    assert not (tmp_path / "evil").exists()
    assert_nothing_extracted(tmp_path, destination)


def test_member_climbing_out_from_a_subfolder_is_refused(tmp_path) -> None:
    archive = build_archive(tmp_path / "model.tar.gz", [file_member("code/../../evil")])
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match="climbs out of its folder"):
        safe_extract(archive, destination)

    assert_nothing_extracted(tmp_path, destination)


def test_absolute_member_is_refused_rather_than_stripped(tmp_path) -> None:
    archive = build_archive(tmp_path / "model.tar.gz", [file_member("/etc/x", b"owned")])
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match="absolute path, /etc/x"):
        safe_extract(archive, destination)

    assert_nothing_extracted(tmp_path, destination)


def test_symlink_member_is_refused_and_named(tmp_path) -> None:
    archive = build_archive(
        tmp_path / "model.tar.gz",
        [
            file_member("model.bin"),
            special_member("code/evil", tarfile.SYMTYPE, "/etc/passwd"),
        ],
    )
    destination = tmp_path / "model"

    with pytest.raises(StorageError) as refused:
        safe_extract(archive, destination)

    assert str(refused.value) == (
        "The archive holds a symbolic link, code/evil -> /etc/passwd; "
        "model archives may hold only files and folders."
    )
    assert_nothing_extracted(tmp_path, destination)


def test_hard_link_member_is_refused_and_named(tmp_path) -> None:
    archive = build_archive(
        tmp_path / "model.tar.gz",
        [file_member("model.bin"), special_member("copy.bin", tarfile.LNKTYPE, "model.bin")],
    )
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match=r"hard link, copy\.bin -> model\.bin"):
        safe_extract(archive, destination)

    assert_nothing_extracted(tmp_path, destination)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (tarfile.CHRTYPE, "device file, dev/thing"),
        (tarfile.BLKTYPE, "device file, dev/thing"),
        (tarfile.FIFOTYPE, r"named pipe \(FIFO\), dev/thing"),
    ],
)
def test_device_and_fifo_members_are_refused_and_named(tmp_path, kind, words) -> None:
    archive = build_archive(tmp_path / "model.tar.gz", [special_member("dev/thing", kind)])
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match=words):
        safe_extract(archive, destination)

    assert_nothing_extracted(tmp_path, destination)


def test_archive_with_too_many_members_is_refused(tmp_path) -> None:
    members = [file_member(f"shard-{number}.bin") for number in range(4)]
    archive = build_archive(tmp_path / "model.tar.gz", members)
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match="more than 3 members"):
        safe_extract(archive, destination, max_members=3)

    assert_nothing_extracted(tmp_path, destination)


def test_archive_at_exactly_the_limits_is_accepted(tmp_path) -> None:
    members = [file_member(f"shard-{number}.bin", b"12345") for number in range(3)]
    archive = build_archive(tmp_path / "model.tar.gz", members)

    names = safe_extract(archive, tmp_path / "model", max_bytes=15, max_members=3)

    assert len(names) == 3


def test_archive_whose_members_together_exceed_max_bytes_is_refused(tmp_path) -> None:
    # Each member is under the limit; only their sum is over it.
    members = [file_member("a.bin", b"12345678"), file_member("b.bin", b"12345678")]
    archive = build_archive(tmp_path / "model.tar.gz", members)
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match="more than 10 bytes"):
        safe_extract(archive, destination, max_bytes=10)

    assert_nothing_extracted(tmp_path, destination)


@pytest.mark.parametrize(
    "content",
    [
        b"this is not an archive at all",
        b"",
        b"PK\x03\x04" + b"\x00" * 600,  # a zip file
        bz2.compress(b"\x00" * 1024),
    ],
)
def test_anything_but_a_tar_or_tar_gz_is_refused(tmp_path, content) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(content)
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match=r"This is not a \.tar\.gz archive"):
        safe_extract(archive, destination)

    assert_nothing_extracted(tmp_path, destination)


def test_gzip_that_does_not_hold_a_tar_is_refused_as_damaged(tmp_path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(gzip.compress(b"just some text, no tar headers" * 100))
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match="damaged or incomplete"):
        safe_extract(archive, destination)

    assert_nothing_extracted(tmp_path, destination)


def test_truncated_archive_is_refused_and_leaves_nothing_behind(tmp_path) -> None:
    archive = build_archive(
        tmp_path / "model.tar.gz",
        [file_member("a.bin", os.urandom(50_000)), file_member("b.bin", os.urandom(50_000))],
    )
    archive.write_bytes(archive.read_bytes()[:60_000])
    destination = tmp_path / "model"

    with pytest.raises(StorageError, match="damaged or incomplete"):
        safe_extract(archive, destination)

    assert_nothing_extracted(tmp_path, destination)


def test_missing_archive_says_so(tmp_path) -> None:
    with pytest.raises(StorageError, match="No archive at"):
        safe_extract(tmp_path / "missing.tar.gz", tmp_path / "model")
